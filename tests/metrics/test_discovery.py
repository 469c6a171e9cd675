"""Hand-computed cases for the Matbench Discovery metric definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import r2_score

from mlipflows.metrics.discovery import classify_stable, regression_metrics, stability_metrics


def test_confusion_counts_and_nan_is_predicted_unstable():
    true = [-0.1, 0.0, 0.05, 0.2, -0.02, 0.3]
    pred = [-0.05, 0.01, -0.01, 0.3, float("nan"), 0.0]
    # actual stable: 0, 1, 4 ; predicted stable: 0, 2, 5 (NaN at 4 → unstable)
    assert classify_stable(true, pred) == (1, 2, 2, 1)


def test_stability_metrics_by_hand():
    true = [-0.1, 0.0, 0.05, 0.2, -0.02, 0.3]
    pred = [-0.05, 0.01, -0.01, 0.3, float("nan"), 0.0]
    m = stability_metrics(true, pred)
    precision, recall, prevalence = 1 / 3, 1 / 3, 3 / 6
    assert m["Precision"] == pytest.approx(precision)
    assert m["Recall"] == pytest.approx(recall)
    assert m["F1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert m["DAF"] == pytest.approx(precision / prevalence)
    assert m["Accuracy"] == pytest.approx(2 / 6)
    assert m["FPR"] == pytest.approx(2 / 3) and m["TNR"] == pytest.approx(1 / 3)
    # regression over the 5 finite pairs
    err = np.array([0.05, 0.01, -0.06, 0.1, -0.3])
    assert m["MAE"] == pytest.approx(np.abs(err).mean())
    assert m["RMSE"] == pytest.approx(np.sqrt((err**2).mean()))
    assert m["n"] == 5


def test_r2_matches_sklearn():
    rng = np.random.default_rng(0)
    t = rng.normal(size=50)
    p = t + rng.normal(scale=0.3, size=50)
    assert regression_metrics(t, p)["R2"] == pytest.approx(r2_score(t, p))


def test_perfect_and_empty_cases():
    m = stability_metrics([-1.0, 1.0], [-1.0, 1.0])
    assert m["F1"] == 1.0 and m["DAF"] == 2.0 and m["MAE"] == 0.0
    none_stable = stability_metrics([1.0, 2.0], [1.0, 2.0])
    assert math.isnan(none_stable["F1"]) and math.isnan(none_stable["Precision"])
    all_wrong = stability_metrics([-1.0, 1.0], [1.0, -1.0])
    assert all_wrong["Precision"] == 0.0 and math.isnan(all_wrong["F1"])
    assert regression_metrics([float("nan")], [1.0])["n"] == 0


def test_nan_label_is_neither_positive_nor_negative():
    assert classify_stable([float("nan"), -1.0], [-1.0, -1.0]) == (1, 0, 0, 0)


def test_threshold_is_inclusive():
    assert classify_stable([0.0], [0.0]) == (1, 0, 0, 0)
    assert classify_stable([0.0], [1e-9]) == (0, 1, 0, 0)
