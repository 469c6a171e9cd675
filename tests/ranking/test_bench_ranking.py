"""Ranking benchmark pieces: ground-state ranks, rank-correlation metrics, the Si polymorph loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Composition

from mlipflows.bench.ranking import (
    KNOWN_SYSTEMS,
    energy_ranking_metrics,
    ground_state_rank,
    load_si_polymorphs,
    recovery_table,
)
from mlipflows.engine import static
from mlipflows.errors import DataNotFoundError
from mlipflows.potentials import load_potential
from mlipflows.prototypes import PROTOTYPES

SI8 = Path(__file__).parents[1] / "data" / "ranking" / "Si8-subset.json.gz"


def test_every_known_ground_state_is_in_the_library_with_the_right_stoichiometry():
    for system in KNOWN_SYSTEMS:
        proto = PROTOTYPES[system.ground_state]
        counts = sorted(proto.stoichiometry().values())
        comp = Composition(system.formula).reduced_composition
        assert counts == sorted(int(n) for n in comp.values()), system.formula


def test_ground_state_rank_follows_merged_duplicates():
    ranking = [
        {"rank": 1, "structure_id": "proto-nias-A=Na,B=Cl", "duplicates": ["random-003-sg225-z1"]},
        {"rank": 2, "structure_id": "random-001-sg62-z4", "duplicates": ["proto-rocksalt-A=Cl,B=Na"]},
        {"rank": 3, "structure_id": "proto-cscl", "duplicates": []},
    ]
    assert ground_state_rank(ranking, "rocksalt") == 2
    assert ground_state_rank(ranking, "cscl") == 3
    assert ground_state_rank(ranking, "wurtzite") is None
    assert ground_state_rank(ranking, "nias") == 1  # "proto-nias-..." but not "proto-niasx"
    table = recovery_table(
        {"NaCl": {"ranking": [{**r, "spacegroup": "x", "delta_e_mev_per_atom": 0.0} for r in ranking]}}
    )
    row = table.set_index("formula").loc["NaCl"]
    assert row["rank_of_known"] == 2 and not row["top1_hit"]
    assert table.set_index("formula").loc["Si", "rank_of_known"] is None or np.isnan(
        table.set_index("formula").loc["Si", "rank_of_known"]
    )


def test_rank_metrics_on_known_orders():
    dft = np.array([0.0, 0.1, 0.2, 0.3, 0.4])
    same_order = dft**2 + 5.0  # monotone: ρ = τ = 1, whatever the offset
    m = energy_ranking_metrics(dft, same_order)
    assert m["spearman_rho"] == pytest.approx(1.0) and m["kendall_tau"] == pytest.approx(1.0)
    assert m["mae_relative_ev_per_atom"] == pytest.approx(np.mean(np.abs(dft**2 - dft)))  # offset drops out
    reversed_order = -dft
    assert energy_ranking_metrics(dft, reversed_order)["kendall_tau"] == pytest.approx(-1.0)
    with_failure = np.array([0.0, 0.1, np.nan, 0.3, 0.4])
    m = energy_ranking_metrics(dft, with_failure)
    assert m["n"] == 4 and m["n_failed"] == 1 and m["mae_relative_ev_per_atom"] == pytest.approx(0.0)
    # one MLIP "hole" far below everything: relative energies stay referenced to the DFT ground state
    hole = dft.copy()
    hole[4] = -50.0
    m = energy_ranking_metrics(dft, hole, window=0.25)
    assert m["n_below_ground_state"] == 1 and m["median_ae_relative_ev_per_atom"] == pytest.approx(0.0)
    assert m["n_within_window"] == 3 and m["mae_relative_within_window_ev_per_atom"] == pytest.approx(0.0)


def test_si_polymorphs_load_and_evaluate_in_one_batched_static():
    structures, dft = load_si_polymorphs(SI8)
    assert len(structures) == 21 and all(s.composition.reduced_formula == "Si" for s in structures)
    assert np.isfinite(dft).all() and -5.5 < dft.min() < -5.0  # PBE diamond Si ≈ −5.42 eV/atom
    # nearest neighbours in fractional → Cartesian reading: physical Si–Si distances
    dmin = min((s.distance_matrix + 99 * np.eye(len(s))).min() for s in structures)
    assert dmin > 1.6
    results = static(structures, load_potential("morse"), compute_stress=False)
    assert all(r.ok for r in results)
    with pytest.raises(DataNotFoundError, match=r"Si8\.json\.gz"):
        load_si_polymorphs(SI8.parent / "missing")
