"""Sanity checks: model holes are caught and kept as unphysical; known-good structures never are."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pymatgen.core import Lattice, Structure

from mlipflows.bench.formation import load_wbm
from mlipflows.engine import RelaxSettings, relax, static
from mlipflows.engine.batch import Batch
from mlipflows.engine.sanity import SanityLimits, clear_elemental_cache, close_contact, elemental_energies
from mlipflows.potentials import load_potential
from mlipflows.potentials.repulsion import RepulsiveCore
from tests.conftest import EXAMPLES
from tests.helpers import holey_morse

WBM = Path(__file__).parents[1] / "data" / "wbm" / "wbm-random-pbe52-equilibrium-2025.1.json.gz"


def _pair(el: str, d: float, box: float = 7.0) -> Structure:
    return Structure(Lattice.cubic(box), [el, el], [[0, 0, 0], [d, 0, 0]], coords_are_cartesian=True)


def test_no_known_crystal_is_a_close_contact():
    """The 972 WBM structures and every shipped example pass the geometry check."""
    limits = SanityLimits()
    structures = [r.structure for r in load_wbm(WBM)] + [
        Structure.from_file(p) for p in sorted(EXAMPLES.glob("*.cif"))
    ]
    assert len(structures) == 972 + 12
    flagged = [s.composition.reduced_formula for s in structures if close_contact(s, limits.contact_factor)]
    assert flagged == []


def test_close_contact_names_the_pair():
    reason = close_contact(_pair("Cs", 0.62), 0.5)
    assert "0.62 Å apart" in reason and "(Cs)" in reason and "0.13 ×" in reason
    assert close_contact(_pair("Cs", 5.0, box=12.0), 0.5) is None


def test_a_relaxation_into_a_hole_is_stopped_and_kept_as_unphysical():
    pot = holey_morse()
    good = Structure.from_file(EXAMPLES / "Cu_fcc.cif")
    bad, fine = relax([_pair("K", 0.7), good], pot, RelaxSettings(max_steps=500))
    assert bad.state == "unphysical" and bad.error is None
    assert "below the model's own elemental references" in bad.unphysical
    assert bad.energy is not None and bad.forces is not None  # the data are kept
    assert bad.n_steps < 500  # stopped when it fell in, not run to max_steps
    assert fine.state == "successful" and fine.converged


def test_static_results_are_checked_too():
    pot = holey_morse()
    deep, ok = static([_pair("K", 0.55), _pair("K", 4.0)], pot)
    assert deep.state == "unphysical" and ok.state == "successful"
    assert deep.energy is not None


def test_the_model_s_elemental_references_are_cached_on_disk(isolated_home):
    clear_elemental_cache()
    pot = load_potential("morse")
    mu = elemental_energies(pot, {"Cu", "O"})
    assert set(mu) == {"Cu", "O"} and mu["Cu"] < 0
    files = list((isolated_home / "cache" / "elemental-energies").glob("*.json"))
    assert len(files) == 1 and '"Cu"' in files[0].read_text()


def test_repulsive_core_leaves_physical_structures_bit_identical():
    base = holey_morse()
    core = RepulsiveCore(base)
    structures = [Structure.from_file(p) for p in sorted(EXAMPLES.glob("*.cif"))]
    batch = Batch.from_structures(structures, dtype=torch.float64)
    a, b = base.evaluate(batch), core.evaluate(batch)
    assert torch.equal(a.energy, b.energy) and torch.equal(a.forces, b.forces)
    assert torch.equal(a.stress, b.stress)
    assert core.card.checksum != base.card.checksum and core.name == "holey-morse+zbl"


@pytest.mark.parametrize("d", [0.6, 1.3, 2.0, 2.3])  # deep core, inside the switch, edge
def test_repulsive_core_forces_and_stress_are_exact_derivatives(d):
    """Finite differences of E = E_ref + w (E_m − E_ref) + (1 − w) B + E_ZBL, in and out of the switch."""
    core = RepulsiveCore(holey_morse())
    s = Structure(
        Lattice([[6.0, 0.2, 0], [0, 6.5, 0], [0.3, 0, 7.0]]),
        ["Cs", "Cs", "O"],
        [[0, 0, 0], [0, 0, 0], [0.5, 0.5, 0.5]],
    )
    s.translate_sites([1], [d, 0.1, 0.05], frac_coords=False)
    batch = Batch.from_structures([s], dtype=torch.float64)
    out = core.evaluate(batch)
    h = 1e-5
    for atom, axis in ((0, 0), (1, 0), (1, 1)):
        plus, minus = batch.positions.clone(), batch.positions.clone()
        plus[atom, axis] += h
        minus[atom, axis] -= h
        e_p = core.evaluate(Batch(plus, batch.atomic_numbers, batch.system_idx, batch.cell, batch.pbc)).energy
        e_m = core.evaluate(
            Batch(minus, batch.atomic_numbers, batch.system_idx, batch.cell, batch.pbc)
        ).energy
        fd = -(e_p - e_m).item() / (2 * h)
        assert out.forces[atom, axis].item() == pytest.approx(fd, rel=1e-5, abs=1e-5)
    # stress: energy under a small symmetric strain
    eps = 1e-6
    strain = torch.zeros(3, 3, dtype=torch.float64)
    strain[0, 0] = eps
    deform = torch.eye(3, dtype=torch.float64) + strain
    grown = Batch(
        batch.positions @ deform, batch.atomic_numbers, batch.system_idx, batch.cell @ deform, batch.pbc
    )
    shrunk_d = torch.eye(3, dtype=torch.float64) - strain
    shrunk = Batch(
        batch.positions @ shrunk_d, batch.atomic_numbers, batch.system_idx, batch.cell @ shrunk_d, batch.pbc
    )
    de = (core.evaluate(grown).energy - core.evaluate(shrunk).energy).item() / (2 * eps)
    volume = float(batch.volume[0])
    assert out.stress[0, 0, 0].item() == pytest.approx(de / volume, rel=1e-4, abs=1e-6)


def test_the_core_turns_a_hole_into_a_physical_relaxation():
    """Close pairs of a holey model relax out of the hole with +zbl (SevenNet-0: the slow test).

    Not Cs here: this Morse's own repulsion at 0.37 × the radius sum of Cs (5,600 eV) is far
    above any real model's (SevenNet-0: 50 eV) and above the core's plateau.
    """
    pot = RepulsiveCore(holey_morse())
    results = relax([_pair(el, 0.6) for el in ("K", "Ba", "Na", "O")], pot, RelaxSettings(max_steps=500))
    for r in results:
        assert r.state == "successful", r.reason
        d = r.structure.get_distance(0, 1)
        assert d > 1.0  # out of the hole
    plain = relax([_pair("Cs", 0.6)], holey_morse(), RelaxSettings(max_steps=500))[0]
    assert plain.state == "unphysical"


def test_zbl_and_d3_chain_in_load_specs():
    pot = load_potential("tests.helpers:holey_morse+zbl")
    assert isinstance(pot, RepulsiveCore) and pot.name == "holey-morse+zbl"
    both = load_potential("morse+zbl+d3")
    assert both.name == "morse+zbl+d3"
    assert len({load_potential(s).card.checksum for s in ("morse", "morse+zbl", "morse+zbl+d3")}) == 3
