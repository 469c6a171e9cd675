"""Elastic benchmark: MLIP elastic tensors and moduli against Materials Project DFT (PBE).

Two data sets (both in ``shared/data``):

- ``mp-elastic-tensors/mp_val_clean.json.gz``: 1,211 MP materials with the full 6×6 tensor
  (IEEE frame, GPa; trachote/predict_elastic_tensor, MIT; MP data CC-BY-4.0). DFT K_VRH and
  G_VRH are computed from the tensor with pymatgen (the file stores only the Voigt bounds).
- ``matcalc-benchmarks/mp-binary-pbe-elasticity-2025.1.json.gz``: 3,953 MP binaries with DFT
  K_VRH and G_VRH (materialsvirtuallab/matcalc, BSD-3).

Protocol: :class:`~mlipflows.makers.elastic.ElasticMaker` defaults (tight relax, ±0.5/±1 %
strains, fixed-cell relax, symmetrized IEEE tensor). Metrics: MAE of K_VRH and G_VRH (GPa), MAE
of C_ij over all 36 components (IEEE frame, tensor data set only), fraction predicted
Born-stable, counts of failures and warnings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jobflow import JobStore
from monty.io import zopen
from pymatgen.analysis.elasticity import ElasticTensor
from pymatgen.core import Structure

from mlipflows.bench import state_counts, stored_error, stored_state
from mlipflows.errors import DataNotFoundError
from mlipflows.store import stored_results

TENSOR_FILE = "mp_val_clean.json.gz"
MATCALC_FILE = "mp-binary-pbe-elasticity-2025.1.json.gz"
CAMPAIGN = "bench-elastic"


@dataclass
class ElasticRecord:
    """One DFT reference: moduli in GPa, tensor (IEEE, GPa) when the data set has it."""

    material_id: str
    structure: Structure
    k_vrh: float
    g_vrh: float
    tensor: np.ndarray | None = None


def _resolve(path: Path) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        for name in (TENSOR_FILE, MATCALC_FILE):
            if (path / name).is_file():
                return path / name
    if not path.is_file():
        raise DataNotFoundError(
            f"elastic reference data not found at {path}. Pass --data pointing to {TENSOR_FILE} "
            f"(shared/data/mp-elastic-tensors) or {MATCALC_FILE} (shared/data/matcalc-benchmarks), "
            "or to the folder holding it"
        )
    return path


def load_elastic_data(
    path: Path, limit: int | None = None, seed: int = 0, max_sites: int | None = None
) -> tuple[str, list[ElasticRecord]]:
    """(data set name, records) from either file; a seeded sample of ``limit`` after the size cut."""
    path = _resolve(path)
    with zopen(path, "rt") as f:
        raw = json.load(f)
    if isinstance(raw, dict):  # column-oriented MP export with full tensors
        name = "mp-elastic-tensors"
        rows: list[dict[str, Any]] = [
            {
                "id": k,
                "cif": raw["cif"][k],
                "tensor": raw["elasticity.elastic_tensor"][k],
                "n": int(raw["nsites"][k]),
            }
            for k in raw["material_id"]
        ]
    else:
        name = "matcalc-mp-binary"
        rows = [
            {
                "id": d["mp_id"],
                "structure": d["structure"],
                "k": d["bulk_modulus_vrh"],
                "g": d["shear_modulus_vrh"],
            }
            for d in raw
        ]
    rows.sort(key=lambda r: r["id"])
    if max_sites is not None:
        rows = [r for r in rows if _nsites(r) <= max_sites]
    if limit is not None and limit < len(rows):
        idx = np.random.default_rng(seed).choice(len(rows), size=limit, replace=False)
        rows = [rows[i] for i in sorted(idx)]
    return name, [_record(r) for r in rows]


def _nsites(row: dict[str, Any]) -> int:
    if "n" in row:
        return row["n"]
    return len(_structure(row["structure"]))


def _structure(value: str | dict) -> Structure:
    if isinstance(value, str):  # the matcalc file stores the dict's repr
        import ast

        value = ast.literal_eval(value)
    return Structure.from_dict(value)


def _record(row: dict[str, Any]) -> ElasticRecord:
    if "cif" in row:
        tensor = np.array(
            json.loads(row["tensor"]) if isinstance(row["tensor"], str) else row["tensor"], float
        )
        et = ElasticTensor.from_voigt(tensor)
        try:
            k, g = float(et.k_vrh), float(et.g_vrh)
        except np.linalg.LinAlgError:  # a singular DFT tensor has no Reuss bound
            k = g = float("nan")
        return ElasticRecord(row["id"], Structure.from_str(row["cif"], fmt="cif"), k, g, tensor)
    return ElasticRecord(row["id"], _structure(row["structure"]), float(row["k"]), float(row["g"]))


def stored_documents(store: JobStore, campaign: str, checksum: str) -> dict[str, dict]:
    """Full elastic documents (with tensors) already stored for ``campaign`` and these weights."""
    crit = {"campaign": campaign, "model.checksum": checksum, "task_type": "elastic"}
    return {d["structure_id"]: d for d in stored_results(store, crit)}


def evaluate(records: list[ElasticRecord], docs: dict[str, dict]) -> pd.DataFrame:
    """One row per record: DFT and MLIP moduli, C_ij MAE, Born verdict, warnings or error."""
    rows = []
    for r in records:
        row: dict[str, Any] = {
            "material_id": r.material_id,
            "formula": r.structure.composition.reduced_formula,
            "n_sites": len(r.structure),
            "dft_k_vrh": r.k_vrh,
            "dft_g_vrh": r.g_vrh,
            "dft_born_stable": None if r.tensor is None else bool(np.linalg.eigvalsh(r.tensor).min() > 0),
            "mlip_k_vrh": np.nan,
            "mlip_g_vrh": np.nan,
            "cij_mae": np.nan,
            "born_stable": None,
            "n_warnings": 0,
            "error": None,
        }
        doc = docs.get(r.material_id)
        row["state"] = stored_state(doc)
        row["error"] = stored_error(doc)
        if row["error"] is None:
            row.update(
                mlip_k_vrh=doc["k_vrh"],
                mlip_g_vrh=doc["g_vrh"],
                born_stable=bool(doc["born_stable"]),
                n_warnings=len(doc.get("warnings") or []),
            )
            if r.tensor is not None:
                row["cij_mae"] = float(np.abs(np.array(doc["elastic_tensor"]) - r.tensor).mean())
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(frame: pd.DataFrame) -> dict[str, Any]:
    """MAE of K_VRH, G_VRH and C_ij (GPa), Born-stable fraction, failure counts.

    Materials whose DFT tensor is itself not positive definite are left out of the MAEs (their
    Reuss bounds, hence DFT K_VRH/G_VRH, are meaningless) and counted.
    """
    unstable_ref = frame["dft_born_stable"].eq(False)
    ok = frame[~unstable_ref].dropna(subset=["mlip_k_vrh"])
    out: dict[str, Any] = {
        "n_materials": len(frame),
        "n_dft_not_born_stable_excluded": int(unstable_ref.sum()),
        **state_counts(frame["state"]),
        "n_compared": len(ok),
        "n_with_warnings": int((ok["n_warnings"] > 0).sum()),
        "mae_k_vrh_gpa": float((ok["mlip_k_vrh"] - ok["dft_k_vrh"]).abs().mean()) if len(ok) else None,
        "mae_g_vrh_gpa": float((ok["mlip_g_vrh"] - ok["dft_g_vrh"]).abs().mean()) if len(ok) else None,
        "mean_error_k_vrh_gpa": float((ok["mlip_k_vrh"] - ok["dft_k_vrh"]).mean()) if len(ok) else None,
        "mean_error_g_vrh_gpa": float((ok["mlip_g_vrh"] - ok["dft_g_vrh"]).mean()) if len(ok) else None,
        "fraction_born_stable": float(ok["born_stable"].astype(bool).mean()) if len(ok) else None,
    }
    cij = ok["cij_mae"].dropna()
    out["mae_cij_gpa"] = float(cij.mean()) if len(cij) else None
    # errors that enter the moduli MAEs only through absurd fits, reported separately
    sane = ok[(ok["mlip_k_vrh"].between(0, 1000)) & (ok["mlip_g_vrh"].between(0, 1000))]
    out["n_moduli_in_0_1000_gpa"] = len(sane)
    out["mae_k_vrh_gpa_sane"] = (
        float((sane["mlip_k_vrh"] - sane["dft_k_vrh"]).abs().mean()) if len(sane) else None
    )
    out["mae_g_vrh_gpa_sane"] = (
        float((sane["mlip_g_vrh"] - sane["dft_g_vrh"]).abs().mean()) if len(sane) else None
    )
    return out


def parity_plot(frame: pd.DataFrame, model: str, metrics: dict[str, Any], path: Path) -> None:
    """K_VRH and G_VRH, MLIP vs DFT, side by side (GPa)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = frame[~frame["dft_born_stable"].eq(False)].dropna(subset=["mlip_k_vrh"])
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 4.2))
    for ax, key, label in zip(axes, ("k_vrh", "g_vrh"), ("K_VRH", "G_VRH"), strict=True):
        x, y = ok[f"dft_{key}"], ok[f"mlip_{key}"].clip(-50, 600)
        ax.scatter(x, y, s=8, alpha=0.6)
        hi = float(max(x.max(), y.max(), 10)) * 1.05 if len(ok) else 100.0
        ax.plot([0, hi], [0, hi], "k--", lw=1)
        ax.set(xlim=(0, hi), ylim=(min(0, float(y.min()) if len(ok) else 0), hi))
        ax.set(xlabel=f"DFT {label} (GPa)", ylabel=f"{model} {label} (GPa)")
        ax.set_title(
            f"{label}: MAE {metrics[f'mae_{key}_gpa'] or float('nan'):.1f} GPa (n={len(ok)})", fontsize=9
        )
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
