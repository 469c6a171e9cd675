"""A funnel's verdicts next to DFT for the candidates that are phononDB-PBE materials.

The κ_SRME set (``shared/data/phonondb-kappa103``) holds rocksalt, zincblende and wurtzite
binaries that DFT finds dynamically stable, with their κ at 300 K. For every funnel candidate
that is one of them (same formula, same space group: rocksalt 225, zincblende 216, wurtzite
186) this prints how far it got in the funnel, the MLIP's dynamic-stability verdict, and the
funnel's κ next to DFT's, and the per-stage counts and wall times from the stage manifests.

    python benchmarks/funnel_vs_dft.py --campaign funnel-binaries \\
        --data ../shared/data/phonondb-kappa103 [--csv analysis/funnels/funnel-binaries-vs-dft.csv]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

PROTOTYPE_SPACEGROUP = {"rocksalt": 225, "zincblende": 216, "wurtzite": 186}


def _count(value: object) -> int:
    """A manifest count; missing (NaN in the frame) is 0."""
    return int(value) if isinstance(value, int | float) and value == value else 0


def stage_times(frame: pd.DataFrame) -> pd.DataFrame:
    """Per stage: selected, chunk jobs, wall time of the runs that did work (resumes included)."""
    from mlipflows.campaign.funnel import stage_work_seconds

    rows = []
    for m in frame[frame.task_type == "manifest"].sort_values("created_at").to_dict("records"):
        runs = m.get("runs") if isinstance(m.get("runs"), list) else []
        if not runs and isinstance(m.get("finished_at"), str):  # a manifest from before run histories
            span = {"started_at": m["created_at"], "finished_at": m["finished_at"]}
            runs = [{**span, "n_to_run": m.get("n_to_run")}]
        wall = stage_work_seconds(runs)
        n = _count(m.get("n_selected"))
        rows.append(
            {
                "stage": m["stage"],
                "selected": n,
                "run": sum(_count(r.get("n_to_run")) for r in runs),
                "chunk_jobs": _count(m.get("n_chunks")),
                "wall_s": np.nan if wall is None else wall,
                "s_per_structure": wall / n if wall and n else np.nan,
                "started": m.get("first_created_at", m.get("created_at")),
            }
        )
    return pd.DataFrame(rows)


def compare(frame: pd.DataFrame, data: Path) -> pd.DataFrame:
    from mlipflows.bench.kappa import load_phonondb

    def by_stage(task: str, stage: str | None = None) -> dict[str, dict]:
        sub = frame[frame.task_type == task]
        if stage is not None:
            sub = sub[sub.stage == stage]
        return {r["structure_id"]: r for r in sub.to_dict("records")}

    stability, phonons = by_stage("stability"), by_stage("phonon", "phonons")
    elastic, kappa = by_stage("elastic", "elastic"), by_stage("kappa", "kappa")
    rows = []
    for rec in load_phonondb(data):
        formula = rec.structure.composition.reduced_formula
        for proto, sg in PROTOTYPE_SPACEGROUP.items():
            sid = f"{formula}-{proto}"
            if sg != rec.reference.spacegroup or sid not in stability:
                continue
            ph, el, ka = phonons.get(sid), elastic.get(sid), kappa.get(sid)
            k_mlip = np.nan
            if ka is not None and isinstance(ka.get("kappa_tot_avg"), list | np.ndarray):
                k_mlip = float(np.ravel(ka["kappa_tot_avg"])[0])
            k_dft = float(np.ravel(rec.reference.kappa_tot_avg)[0])
            reached = "κ" if ka is not None else "elastic" if el is not None else "phonons" if ph else "hull"
            rows.append(
                {
                    "structure_id": sid,
                    "material_id": rec.material_id,
                    "e_above_hull": stability[sid].get("e_above_hull"),
                    "reached": reached,
                    "mlip_dynamically_stable": None if ph is None else not bool(ph["has_imaginary_modes"]),
                    "min_frequency_thz": None if ph is None else ph.get("min_frequency"),
                    "born_stable": None if el is None else el.get("born_stable"),
                    "kappa_mlip": k_mlip,
                    "kappa_dft": k_dft,
                    "srd": 2 * (k_mlip - k_dft) / (k_mlip + k_dft) if np.isfinite(k_mlip) else np.nan,
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaign", default="funnel-binaries")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/phonondb-kappa103"))
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()

    from mlipflows.results import query_results
    from mlipflows.store import get_job_store

    frame = query_results(get_job_store(), {"campaign": args.campaign})
    print(stage_times(frame).round(2).to_string(index=False))
    table = compare(frame, args.data)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)
    print(table.round(3).to_string(index=False))
    judged = table.dropna(subset=["mlip_dynamically_stable"])
    n_stable = int(judged["mlip_dynamically_stable"].astype(bool).sum())
    with_kappa = table.dropna(subset=["kappa_mlip"])
    print(
        f"{len(table)} funnel candidates are phononDB materials (all dynamically stable in DFT); "
        f"{len(judged)} reached the phonon stage, the MLIP finds {n_stable} of them stable "
        f"({100 * n_stable / max(len(judged), 1):.0f} % agreement); {len(with_kappa)} have a funnel κ: "
        f"mean SRD {with_kappa['srd'].mean():+.3f}, mean |SRD| {with_kappa['srd'].abs().mean():.3f}"
    )


if __name__ == "__main__":
    main()
