"""Discovery metrics as Matbench Discovery defines them (``metrics/discovery.py`` there).

A material is *stable* when its energy above the hull is ≤ the threshold (0 eV/atom). A
prediction that is NaN counts as predicted unstable (it can never be a positive); a NaN label
counts as neither. The regression metrics (MAE, RMSE, R²) use only pairs where both values are
finite. F1 is NaN when precision + recall is 0 or undefined, as in the reference code.
DAF (discovery acceleration factor) = precision / prevalence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

STABILITY_THRESHOLD = 0.0  # eV/atom


def classify_stable(
    e_above_hull_true: Sequence[float],
    e_above_hull_pred: Sequence[float],
    threshold: float = STABILITY_THRESHOLD,
) -> tuple[int, int, int, int]:
    """(TP, FN, FP, TN) counts; NaN predictions are predicted unstable."""
    true = np.asarray(e_above_hull_true, dtype=float)
    pred = np.asarray(e_above_hull_pred, dtype=float)
    if true.shape != pred.shape:
        raise ValueError(f"shape mismatch: {true.shape} vs {pred.shape}")
    # a NaN label is neither stable nor unstable (both comparisons are False)
    actual_pos = true <= threshold
    actual_neg = true > threshold
    pred_pos = np.nan_to_num(pred, nan=np.inf) <= threshold
    tp = int(np.sum(actual_pos & pred_pos))
    fn = int(np.sum(actual_pos & ~pred_pos))
    fp = int(np.sum(actual_neg & pred_pos))
    tn = int(np.sum(actual_neg & ~pred_pos))
    return tp, fn, fp, tn


def _div(a: float, b: float) -> float:
    return a / b if b else float("nan")


def stability_metrics(
    e_above_hull_true: Sequence[float],
    e_above_hull_pred: Sequence[float],
    threshold: float = STABILITY_THRESHOLD,
) -> dict[str, float]:
    """F1, DAF, precision, recall, accuracy, TPR/FPR/TNR/FNR, prevalence, MAE, RMSE, R²."""
    tp, fn, fp, tn = classify_stable(e_above_hull_true, e_above_hull_pred, threshold)
    n = tp + fn + fp + tn
    precision = _div(tp, tp + fp)
    recall = _div(tp, tp + fn)
    prevalence = _div(tp + fn, n)
    denominator = precision + recall
    f1 = 2 * precision * recall / denominator if denominator > 0 else float("nan")
    true = np.asarray(e_above_hull_true, dtype=float)
    pred = np.asarray(e_above_hull_pred, dtype=float)
    return {
        "F1": f1,
        "DAF": _div(precision, prevalence),
        "Precision": precision,
        "Recall": recall,
        "Accuracy": _div(tp + tn, n),
        "TPR": recall,
        "FPR": _div(fp, fp + tn),
        "TNR": _div(tn, tn + fp),
        "FNR": _div(fn, fn + tp),
        "Prevalence": prevalence,
        "TP": tp,
        "FP": fp,
        "TN": tn,
        "FN": fn,
        **regression_metrics(true, pred),
    }


def regression_metrics(y_true: Sequence[float], y_pred: Sequence[float]) -> dict[str, float]:
    """MAE, RMSE and R² (sklearn's definition: 1 − SS_res/SS_tot) over finite pairs."""
    t = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    if len(t) == 0:
        return {"MAE": float("nan"), "RMSE": float("nan"), "R2": float("nan"), "n": 0}
    err = p - t
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    r2 = 1.0 - float(np.sum(err**2)) / ss_tot if ss_tot > 0 else float("nan")
    return {
        "MAE": float(np.mean(np.abs(err))),
        "RMSE": float(np.sqrt(np.mean(err**2))),
        "R2": r2,
        "n": len(t),
    }
