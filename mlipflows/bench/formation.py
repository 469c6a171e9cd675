"""Formation energies on WBM structures (matcalc's 972-structure random WBM sample).

Protocol: relax each DFT-relaxed WBM structure with the MLIP (FIRE + Fréchet filter,
fmax 0.05 eV/Å, ≤ 500 steps), MP2020-correct the MLIP energy with MP's parameters for the
composition, take the formation energy against the MP 2023-02-07 elemental references, and
compare with DFT.

Two DFT targets are reported: the dataset's ``corrected_formation_energy_per_atom`` and the
same quantity recomputed from its ``corrected_energy`` with the MP 2023-02-07 references (the
dataset used other elemental references for Br, Bi and I, which shifts those compounds by
up to 0.06 eV/atom; the recomputed target compares like with like).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from jobflow import JobStore
from monty.io import zopen
from pymatgen.core import Structure

from mlipflows.bench import state_counts, stored_error, stored_state
from mlipflows.energies import (
    formation_energy_per_atom,
    mp2020_correct,
    mp_chemical_potentials,
    mp_like_entry,
)
from mlipflows.errors import DataNotFoundError
from mlipflows.metrics.discovery import regression_metrics
from mlipflows.store import stored_results

WBM_FILE = "wbm-random-pbe52-equilibrium-2025.1.json.gz"
CAMPAIGN = "bench-wbm-formation"


@dataclass
class WbmRecord:
    material_id: str
    structure: Structure
    dft_corrected_energy: float
    dft_ef: float


def load_wbm(path: Path, limit: int | None = None, seed: int = 0) -> list[WbmRecord]:
    """WBM records from ``path`` (the file, or a folder holding it); a seeded sample of ``limit``."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / WBM_FILE
    if not path.is_file():
        raise DataNotFoundError(
            f"WBM formation-energy data not found at {path}. Pass --data pointing to "
            f"{WBM_FILE} (matcalc benchmark_data, BSD-3; shipped in shared/data/matcalc-benchmarks)"
        )
    try:
        with zopen(path, "rt") as f:
            raw = json.load(f)
        raw = sorted(raw, key=lambda d: d["material_id"])
    except (ValueError, TypeError, KeyError, OSError) as exc:  # another file given as --data
        raise DataNotFoundError(
            f"{path} is not the WBM formation-energy set ({WBM_FILE}: a JSON list of records with "
            f"material_id, structure, corrected_energy): {type(exc).__name__}: {exc}"
        ) from None
    if limit is not None and limit < len(raw):
        idx = np.random.default_rng(seed).choice(len(raw), size=limit, replace=False)
        raw = [raw[i] for i in sorted(idx)]
    return [
        WbmRecord(
            d["material_id"],
            Structure.from_dict(d["structure"]),
            d["corrected_energy"],
            d["corrected_formation_energy_per_atom"],
        )
        for d in raw
    ]


def evaluate(
    records: list[WbmRecord], docs: dict[str, dict], include_unphysical: bool = False
) -> pd.DataFrame:
    """One row per record: MLIP and DFT formation energies (NaN where the MLIP run failed).

    Unphysical relaxations (a sanity check failed: a model hole) have no MLIP value unless
    ``include_unphysical``; their ``state`` column says so either way.
    """
    mu = mp_chemical_potentials()
    rows = []
    for r in records:
        comp = r.structure.composition
        row = {
            "material_id": r.material_id,
            "formula": comp.reduced_formula,
            "n_sites": len(r.structure),
            "dft_ef_dataset": r.dft_ef,
            "dft_ef_mp2023_refs": formation_energy_per_atom(comp, r.dft_corrected_energy, mu),
            "mlip_ef": np.nan,
            "converged": False,
            "n_steps": np.nan,
            "error": None,
        }
        doc = docs.get(r.material_id)
        row["state"] = stored_state(doc)
        row["error"] = stored_error(doc)
        if row["error"] is None or (include_unphysical and row["state"] == "unphysical"):
            relaxed = Structure.from_dict(doc["structure"])
            entry = mp2020_correct(mp_like_entry(relaxed, doc["energy"], r.material_id))
            if entry is None:
                row["error"] = "MP2020 rejected the entry"
            else:
                row["mlip_ef"] = formation_energy_per_atom(comp, entry.energy, mu)
            row["converged"] = bool(doc["converged"])
            row["n_steps"] = doc["n_steps"]
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame) -> dict:
    """MAE / RMSE / R² against both DFT targets, and failure counts."""
    return {
        "n_structures": len(frame),
        "n_without_mlip_value": int(frame["mlip_ef"].isna().sum()),
        **state_counts(frame["state"]),
        "n_not_converged": int((~frame["converged"] & frame["mlip_ef"].notna()).sum()),
        "vs_dft_mp2023_refs": regression_metrics(frame["dft_ef_mp2023_refs"], frame["mlip_ef"]),
        "vs_dft_dataset": regression_metrics(frame["dft_ef_dataset"], frame["mlip_ef"]),
    }


def stored_documents(store: JobStore, checksum: str) -> dict[str, dict]:
    crit = {"campaign": CAMPAIGN, "model.checksum": checksum, "task_type": "relax"}
    return {d["structure_id"]: d for d in stored_results(store, crit)}


def parity_plot(frame: pd.DataFrame, model: str, metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame.dropna(subset=["mlip_ef"])
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(ok["dft_ef_mp2023_refs"], ok["mlip_ef"], s=8, alpha=0.6)
    lo = float(np.nanmin([ok["dft_ef_mp2023_refs"].min(), ok["mlip_ef"].min()])) - 0.2
    hi = float(np.nanmax([ok["dft_ef_mp2023_refs"].max(), ok["mlip_ef"].max()])) + 0.2
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set(
        xlim=(lo, hi),
        ylim=(lo, hi),
        xlabel="DFT E_form (eV/atom)",
        ylabel=f"{model} E_form (eV/atom)",
    )
    m = metrics["vs_dft_mp2023_refs"]
    ax.set_title(f"{model}: MAE {m['MAE']:.3f} eV/atom, R² {m['R2']:.3f} (n={m['n']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
