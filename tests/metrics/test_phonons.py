"""κ_SRME metrics on hand-made inputs (Matbench Discovery's definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from mlipflows.metrics.phonons import (
    KappaPrediction,
    KappaReference,
    aggregate,
    kappa_srd,
    kappa_srme,
    material_metrics,
)

REF = KappaReference(
    kappa_tot_avg=np.array([1.0]),
    mode_kappa_tot_avg=np.array([[[0.5, 0.5], [1.5, 1.5]]]),  # (T=1, q=2, band=2)
    spacegroup=225,
)


def _pred(**kw) -> KappaPrediction:
    base = dict(
        kappa_tot_avg=np.array([3.0]),
        mode_kappa_tot_avg=np.array([[[0.5, 1.0], [1.5, 2.0]]]),
        weights=np.array([1.0, 3.0]),
        has_imaginary_modes=False,
        spacegroup_before=225,
        spacegroup_after=225,
    )
    return KappaPrediction(**(base | kw))


def test_srd_and_sre():
    assert kappa_srd(1.5, 0.5) == pytest.approx(1.0)
    assert kappa_srd(0.5, 1.5) == pytest.approx(-1.0)
    assert kappa_srd(None, 1.0) == -2.0
    assert kappa_srd(float("nan"), 1.0) == -2.0


def test_srme_by_hand():
    # Σ|Δ| = 0 + 0.5 + 0 + 0.5 = 1, Σw = 4 → micro 0.25; SRME = 2·0.25/(3 + 1) = 0.125
    got = kappa_srme(
        np.array([[0.5, 1.0], [1.5, 2.0]]), np.array([[0.5, 0.5], [1.5, 1.5]]), np.array([1.0, 3.0]), 3.0, 1.0
    )
    assert got == pytest.approx(0.125)


def test_material_metrics_by_hand():
    m = material_metrics(_pred(), REF)  # REF modes: [[0.5, 0.5], [1.5, 1.5]]
    assert m["srd"] == pytest.approx(1.0) and m["sre"] == pytest.approx(1.0)
    assert m["srme"] == pytest.approx(0.125) and m["srme_reason"] is None
    perfect = _pred(kappa_tot_avg=np.array([1.0]), mode_kappa_tot_avg=REF.mode_kappa_tot_avg)
    assert material_metrics(perfect, REF)["srme"] == 0.0


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"has_imaginary_modes": True}, "imaginary"),
        ({"spacegroup_after": 166}, "symmetry broken"),
        ({"spacegroup_before": None, "spacegroup_after": 216}, "symmetry broken"),  # vs the reference
        ({"mode_kappa_tot_avg": None}, "missing"),
        ({"mode_kappa_tot_avg": np.array([[[np.nan, 1.0], [1.5, 2.0]]])}, "NaN"),
        ({"mode_kappa_tot_avg": np.ones((1, 3, 2))}, "shape"),
        ({"error": "relaxation failed"}, "failed"),
    ],
)
def test_srme_is_two_when_invalid(changes, reason):
    m = material_metrics(_pred(**changes), REF)
    assert m["srme"] == 2.0 and reason in m["srme_reason"]


def test_censored_materials_score_srd_minus_two():
    """k_SRME and Matbench never compute κ for imaginary modes or broken symmetry: SRD −2, SRE 2.

    The κ we did compute is kept apart so that nothing is lost.
    """
    for changes in ({"has_imaginary_modes": True}, {"spacegroup_after": 166}):
        m = material_metrics(_pred(**changes), REF)
        assert m["srd"] == -2.0 and m["sre"] == 2.0 and m["srme"] == 2.0
        assert m["kappa_pred"] is None and m["kappa_pred_uncensored"] == pytest.approx(3.0)


def test_negative_kappa_is_missing_and_out_of_range_srme_is_censored():
    assert kappa_srd(-0.1, 1.0) == -2.0
    assert kappa_srd(0.0, 0.0) == 0.0
    m = material_metrics(_pred(kappa_tot_avg=np.array([-1.0])), REF)
    assert m["srme"] == 2.0 and m["srd"] == -2.0
    # per-mode values far from their average push the score above 2: censored as Matbench does
    wild = _pred(kappa_tot_avg=np.array([0.01]), mode_kappa_tot_avg=np.array([[[50.0, 50.0], [50.0, 50.0]]]))
    m = material_metrics(wild, REF)
    assert m["srme"] == 2.0 and "outside" in m["srme_reason"]


def test_missing_prediction():
    m = material_metrics(KappaPrediction(error="not run"), REF)
    assert (m["srd"], m["sre"], m["srme"]) == (-2.0, 2.0, 2.0)


def test_nan_reference_is_a_data_error():
    with pytest.raises(ValueError, match="NaN"):
        material_metrics(_pred(), KappaReference(np.array([np.nan]), np.zeros((1, 2, 2))))


def test_aggregate():
    rows = [
        {"srd": 1.0, "sre": 1.0, "srme": 0.125, "srme_reason": None},
        {"srd": -2.0, "sre": 2.0, "srme": 2.0, "srme_reason": "failed: x"},
    ]
    agg = aggregate(rows)
    assert agg["kappa_srme"] == pytest.approx(1.0625)
    assert agg["kappa_sre"] == pytest.approx(1.5) and agg["kappa_srd"] == pytest.approx(-0.5)
    assert agg["failure_rate"] == 0.5 and agg["n_failed"] == 1


def test_aggregate_of_a_table_counts_only_real_reasons():
    """Rows read back from a DataFrame carry NaN, not None, where there is no reason."""
    import pandas as pd

    frame = pd.DataFrame(
        [
            {"srd": 0.1, "sre": 0.1, "srme": 0.3, "srme_reason": None},
            {"srd": 0.2, "sre": 0.2, "srme": 0.5, "srme_reason": None},
            {"srd": -2.0, "sre": 2.0, "srme": 2.0, "srme_reason": "imaginary modes"},
        ]
    )
    agg = aggregate(frame.to_dict("records"))
    assert agg["n_failed"] == 1 and agg["failure_rate"] == pytest.approx(1 / 3)
