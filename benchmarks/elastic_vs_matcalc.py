"""mlipflows elastic next to matcalc's ElasticityCalc: the same model, the same structures.

Both get the same calculator (the model as an ASE calculator for matcalc, our batched engine
for mlipflows: the same weights, forces equal to float precision), and MP structures from
``shared/data/mp-elastic-tensors``. Two runs:

- ``defaults``: each tool as it comes (matcalc 0.7.0: relax to fmax 0.1 eV/Å, normal strains
  ±0.5/±1 %, shear ±3/±6 %, strained cells not relaxed; mlipflows: tight symmetric relaxation
  to fmax 0.002 eV/Å, ±0.5/±1 % on all six components, atoms relaxed in every strained cell);
- ``matched``: matcalc given our strain set (±0.5/±1 % on every component), fmax 0.002 eV/Å for
  the relaxation and for the relaxation of every strained cell.

Prints per-material K_VRH and G_VRH (GPa) of both and their relative differences, and writes
``analysis/elastic/matcalc/<model>-<run>.csv``. matcalc is a benchmark-only dependency
(``pip install -e ".[bench]"``).

    python benchmarks/elastic_vs_matcalc.py --model sevennet-0 --n 20 --max-sites 8 --run both
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

OUT = Path(__file__).parents[1] / "analysis" / "elastic" / "matcalc"
STRAINS = (-0.01, -0.005, 0.005, 0.01)


def ours(structures, model: str) -> list[tuple[float, float, str | None]]:
    from mlipflows.makers.elastic import ElasticSettings, compute_elastic
    from mlipflows.potentials import load_potential

    outcomes = compute_elastic(structures, load_potential(model), ElasticSettings())
    return [
        (o.fit.k_vrh, o.fit.g_vrh, None) if o.fit is not None else (np.nan, np.nan, o.error) for o in outcomes
    ]


def theirs(structures, model: str, matched: bool) -> list[tuple[float, float, str | None]]:
    from matcalc import ElasticityCalc

    from mlipflows.potentials.ase_calculator import MlipflowsCalculator

    kwargs = {"units_GPa": True}
    if matched:
        kwargs |= {
            "norm_strains": STRAINS,
            "shear_strains": STRAINS,
            "fmax": 0.002,
            "relax_deformed_structures": True,
            "relax_calc_kwargs": {"max_steps": 1000},
        }
    calc = ElasticityCalc(MlipflowsCalculator(model=model), **kwargs)
    out = []
    for s in structures:
        try:
            r = calc.calc(s)
            out.append((float(r["bulk_modulus_vrh"]), float(r["shear_modulus_vrh"]), None))
        except Exception as exc:  # one material's failure is a row, not the end of the run
            out.append((np.nan, np.nan, f"{type(exc).__name__}: {exc}"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mp-elastic-tensors"))
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--max-sites", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", choices=["defaults", "matched", "both"], default="both")
    args = parser.parse_args()

    from mlipflows.bench.elastic import load_elastic_data

    _, records = load_elastic_data(args.data, args.n, args.seed, args.max_sites)
    structures = [r.structure for r in records]
    OUT.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    mine = ours(structures, args.model)
    t_ours = time.perf_counter() - t0
    for run in ("defaults", "matched") if args.run == "both" else (args.run,):
        t0 = time.perf_counter()
        other = theirs(structures, args.model, matched=run == "matched")
        t_theirs = time.perf_counter() - t0
        rows = []
        for rec, (k1, g1, e1), (k2, g2, e2) in zip(records, mine, other, strict=True):
            rows.append(
                {
                    "material_id": rec.material_id,
                    "formula": rec.structure.composition.reduced_formula,
                    "dft_k_vrh": rec.k_vrh,
                    "dft_g_vrh": rec.g_vrh,
                    "k_mlipflows": k1,
                    "k_matcalc": k2,
                    "g_mlipflows": g1,
                    "g_matcalc": g2,
                    "dk_percent": 100 * (k2 - k1) / k1,
                    "dg_percent": 100 * (g2 - g1) / g1,
                    "error": e1 or e2,
                }
            )
        frame = pd.DataFrame(rows)
        frame.to_csv(OUT / f"{args.model}-{run}.csv", index=False)
        ok = frame.dropna(subset=["dk_percent", "dg_percent"])
        sane = ok[ok["k_mlipflows"].between(1, 1000) & ok["g_mlipflows"].between(1, 1000)]
        print(frame.round(2).to_string(index=False))
        print(
            f"{run}: {len(sane)} of {len(frame)} materials compared; |ΔK|/K median "
            f"{sane['dk_percent'].abs().median():.2f} %, max {sane['dk_percent'].abs().max():.2f} %; "
            f"|ΔG|/G median {sane['dg_percent'].abs().median():.2f} %, max "
            f"{sane['dg_percent'].abs().max():.2f} %; within 1 %: "
            f"K {int((sane['dk_percent'].abs() <= 1).sum())}, "
            f"G {int((sane['dg_percent'].abs() <= 1).sum())}; MAE vs DFT K "
            f"{(sane['k_mlipflows'] - sane['dft_k_vrh']).abs().mean():.1f} (ours) / "
            f"{(sane['k_matcalc'] - sane['dft_k_vrh']).abs().mean():.1f} (matcalc) GPa, G "
            f"{(sane['g_mlipflows'] - sane['dft_g_vrh']).abs().mean():.1f} / "
            f"{(sane['g_matcalc'] - sane['dft_g_vrh']).abs().mean():.1f} GPa; "
            f"wall: mlipflows {t_ours:.0f} s (batched), matcalc {t_theirs:.0f} s"
        )


if __name__ == "__main__":
    main()
