"""κ metrics of the κ_SRME benchmark (Póta et al., arXiv:2408.00755), as Matbench Discovery computes them.

Per material, at the first temperature (300 K), with κ_avg the mean of κ_TOT's xx, yy, zz:

    SRD  = 2 (κ_pred − κ_DFT) / (κ_pred + κ_DFT)            (−2 when the prediction is missing)
    SRE  = |SRD|
    SRME = 2 Σ_{q,s} |κ_pred(q,s) − κ_DFT(q,s)| / Σ_q w_q / (κ_pred + κ_DFT)

where κ(q,s) are the per-mode κ_TOT (mode-averaged xx, yy, zz; summed over the irreducible
q-points with their multiplicity already included) and w_q the q-point weights. SRME = 2 when
the prediction has imaginary modes, its space group changed in the relaxation, values are
missing, NaN or negative, the score falls outside [0, 2], or anything failed. Such a material
is censored as the k_SRME code and Matbench Discovery do: they never compute its κ, so its
SRD is −2 and its SRE 2 even where we computed a κ (kept as ``kappa_pred_uncensored``).
κ in W/(m·K). Matches k_SRME's ``benchmark.py`` and matbench_discovery.metrics.phonons.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SRME_FAILED = 2.0
SRD_MISSING = -2.0


@dataclass
class KappaPrediction:
    """One material's MLIP result (None fields = missing).

    Attributes:
        kappa_tot_avg: (T,) W/(m·K).
        mode_kappa_tot_avg: (T, q, band) per-mode κ_TOT, xx/yy/zz-averaged, W/(m·K).
        weights: (q,) q-point weights.
        has_imaginary_modes / spacegroup_before / spacegroup_after: the SRME = 2 conditions.
        error: why the calculation failed.
        skipped: why κ was not computed (the protocol's stability gate).
    """

    kappa_tot_avg: np.ndarray | None = None
    mode_kappa_tot_avg: np.ndarray | None = None
    weights: np.ndarray | None = None
    has_imaginary_modes: bool | None = None
    spacegroup_before: int | None = None
    spacegroup_after: int | None = None
    error: str | None = None
    skipped: str | None = None


@dataclass
class KappaReference:
    """DFT reference of one material: κ_TOT avg (T,), per-mode (T, q, band), space group."""

    kappa_tot_avg: np.ndarray
    mode_kappa_tot_avg: np.ndarray
    spacegroup: int | None = None


def kappa_srd(pred_avg: float | None, true_avg: float) -> float:
    """Symmetric relative difference; −2 for a missing, NaN or negative prediction."""
    if pred_avg is None or not np.isfinite(pred_avg) or pred_avg < 0:
        return SRD_MISSING
    if pred_avg == 0 and true_avg == 0:
        return 0.0
    return float(2 * (pred_avg - true_avg) / (pred_avg + true_avg))


def kappa_srme(
    pred_mode: np.ndarray, true_mode: np.ndarray, weights: np.ndarray, pred_avg: float, true_avg: float
) -> float:
    """Mode-resolved SRME at one temperature: per-mode arrays (q, band), weights (q,)."""
    micro = np.abs(np.asarray(pred_mode) - np.asarray(true_mode)).sum() / np.asarray(weights).sum()
    return float(2 * micro / (pred_avg + true_avg))


def material_metrics(pred: KappaPrediction, ref: KappaReference) -> dict[str, float | str | None]:
    """SRD, SRE, SRME of one material at the first temperature, and why SRME is 2 if it is.

    Raises:
        ValueError: the DFT reference itself holds NaN (a data problem, not a model one).
    """
    true_avg = float(np.asarray(ref.kappa_tot_avg).reshape(-1)[0])
    if not np.isfinite(true_avg):
        raise ValueError("NaN in the DFT κ reference")
    pred_avg = None
    if pred.kappa_tot_avg is not None and len(np.asarray(pred.kappa_tot_avg).reshape(-1)):
        pred_avg = float(np.asarray(pred.kappa_tot_avg).reshape(-1)[0])
    srme, reason = _srme(pred, ref, pred_avg, true_avg)
    censored = reason is not None
    srd = SRD_MISSING if censored else kappa_srd(pred_avg, true_avg)
    return {
        "kappa_pred": None if censored else pred_avg,
        "kappa_pred_uncensored": pred_avg,
        "kappa_dft": true_avg,
        "srd": srd,
        "sre": abs(srd),
        "srme": srme,
        "srme_reason": reason,
    }


def _srme(
    pred: KappaPrediction, ref: KappaReference, pred_avg: float | None, true_avg: float
) -> tuple[float, str | None]:
    if pred.error:
        return SRME_FAILED, f"failed: {pred.error}"
    if pred.has_imaginary_modes:
        return SRME_FAILED, "imaginary modes"
    if pred.skipped:
        return SRME_FAILED, pred.skipped
    before = pred.spacegroup_before if pred.spacegroup_before is not None else ref.spacegroup
    if pred.spacegroup_after is not None and before is not None and pred.spacegroup_after != before:
        return SRME_FAILED, f"symmetry broken: {before} → {pred.spacegroup_after}"
    if (
        pred_avg is None
        or not np.isfinite(pred_avg)
        or pred_avg < 0
        or pred.mode_kappa_tot_avg is None
        or pred.weights is None
    ):
        return SRME_FAILED, "missing values"
    mode = np.asarray(pred.mode_kappa_tot_avg, dtype=float)
    weights = np.asarray(pred.weights, dtype=float)
    if np.isnan(mode).any() or np.isnan(weights).any():
        return SRME_FAILED, "NaN values"
    true_mode = np.asarray(ref.mode_kappa_tot_avg, dtype=float)
    if mode.shape != true_mode.shape:
        return SRME_FAILED, f"mode shape {mode.shape} ≠ reference {true_mode.shape}"
    score = kappa_srme(mode[0], true_mode[0], weights, pred_avg, true_avg)
    if not np.isfinite(score) or not 0 <= score <= SRME_FAILED:
        return SRME_FAILED, f"SRME {score:.3g} outside [0, 2]"
    return score, None


def aggregate(rows: Sequence[dict]) -> dict[str, float | int]:
    """Benchmark aggregates: mean SRME (κ_SRME), mean SRE, mean SRD, failure rate."""
    if not rows:
        return {"n_materials": 0}
    srme = np.array([r["srme"] for r in rows], dtype=float)
    # a reason is a non-empty string; rows from a DataFrame carry NaN where there is none
    failed = np.array([isinstance(r.get("srme_reason"), str) and bool(r["srme_reason"]) for r in rows])
    return {
        "n_materials": len(rows),
        "kappa_srme": float(srme.mean()),
        "kappa_sre": float(np.mean([r["sre"] for r in rows])),
        "kappa_srd": float(np.mean([r["srd"] for r in rows])),
        "failure_rate": float(failed.mean()),
        "n_failed": int(failed.sum()),
        # model holes count as failures (SRME 2, the protocol's rule), and are reported apart
        "n_unphysical": int(sum("unphysical" in str(r.get("srme_reason") or "") for r in rows)),
    }
