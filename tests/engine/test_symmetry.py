"""Symmetrized forces/stress and symmetry-preserving tight relaxation (Morse, float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.engine import Batch, BatchBudget, RelaxSettings, relax
from mlipflows.engine.symmetry import BatchedSymmetry, find_symmetry, spacegroup_number, symmetry_hint
from mlipflows.potentials import load_potential


def _wurtzite(u: float = 0.4, c: float = 5.25):
    """ZnO wurtzite with a non-ideal u and c/a: off equilibrium only along symmetric modes."""
    return AseAtomsAdaptor.get_structure(bulk("ZnO", "wurtzite", a=3.3, c=c, u=u))


def _strained_rocksalt():
    s = AseAtomsAdaptor.get_structure(bulk("NaCl", "rocksalt", 5.5, cubic=True))
    s.apply_strain([0.0, 0.0, 0.03])  # body-centred tetragonal, I4/mmm
    return s


def _rutile(x: float = 0.32, c: float = 3.1):
    """TiO2 rutile (P4_2/mnm) with a non-ideal O parameter x and c/a."""
    from ase.spacegroup import crystal

    atoms = crystal(["Ti", "O"], [(0, 0, 0), (x, x, 0)], spacegroup=136, cellpar=[4.6, 4.6, c, 90, 90, 90])
    return AseAtomsAdaptor.get_structure(atoms)


def _cart_rotations(ops, lattice):
    lt = lattice.T
    return [lt @ r @ np.linalg.inv(lt) for r in ops.rotations]


def test_symmetrized_forces_and_stress_obey_every_operation():
    structures = [_wurtzite(), _strained_rocksalt()]
    ops = [find_symmetry(s) for s in structures]
    assert [o.spacegroup for o in ops] == [186, 139]
    sym = BatchedSymmetry(ops)
    batch = Batch.from_structures(structures)
    rng = np.random.default_rng(0)
    forces = torch.as_tensor(rng.normal(size=(len(batch.positions), 3)))
    stress = torch.as_tensor(rng.normal(size=(2, 3, 3)))
    f_sym = sym.forces(forces, batch.cell)
    s_sym = sym.stress(stress, batch.cell)
    # a projection: applying it twice changes nothing
    torch.testing.assert_close(sym.forces(f_sym, batch.cell), f_sym)
    torch.testing.assert_close(sym.stress(s_sym, batch.cell), s_sym)
    start = 0
    for k, (s, o) in enumerate(zip(structures, ops, strict=True)):
        f = f_sym[start : start + len(s)].numpy()
        start += len(s)
        for r_c, perm in zip(_cart_rotations(o, s.lattice.matrix), o.permutations, strict=True):
            np.testing.assert_allclose(f[perm], f @ r_c.T, atol=1e-12)
            np.testing.assert_allclose(r_c @ s_sym[k].numpy() @ r_c.T, s_sym[k].numpy(), atol=1e-12)


def test_true_forces_are_already_symmetric():
    """Morse forces on a symmetric structure are a fixed point: checks the R_c/permutation convention."""
    pot = load_potential("morse", dtype="float64")
    structures = [_wurtzite(), _strained_rocksalt()]
    batch = Batch.from_structures(structures)
    out = pot.evaluate(batch)
    assert out.forces.abs().max() > 0.03  # a real test: the forces are far from zero
    sym = BatchedSymmetry([find_symmetry(s) for s in structures])
    torch.testing.assert_close(sym.forces(out.forces, batch.cell), out.forces, atol=1e-10, rtol=0)
    torch.testing.assert_close(sym.stress(out.stress, batch.cell), out.stress, atol=1e-12, rtol=0)


def test_tight_relax_keeps_the_space_group():
    pot = load_potential("morse", dtype="float64")
    structures = [_wurtzite(0.4, 5.25), _wurtzite(0.36, 5.4), _rutile()]
    # noise far below symprec that an unsymmetrized relaxation would amplify
    noisy = structures[0].copy()
    noisy.perturb(1e-7)
    structures.append(noisy)
    settings = RelaxSettings(symmetrize=True, fmax=1e-4, max_steps=1000)
    results = relax(structures, pot, settings, budget=BatchBudget(max_atoms=10))
    for s, r in zip(structures, results, strict=True):
        assert r.error is None and r.converged
        assert r.max_force < 1e-4
        assert r.spacegroup_before == spacegroup_number(s) != 1
        assert r.spacegroup_after == r.spacegroup_before
        assert not r.symmetry_changed
    # the relaxation really moved the free parameters (u, c/a) of the wurtzites
    assert abs(results[0].structure.lattice.c - 5.25) > 0.01
    np.testing.assert_allclose(
        results[3].structure.lattice.matrix, results[0].structure.lattice.matrix, atol=1e-6
    )


def test_unsymmetrized_relax_records_no_space_group():
    pot = load_potential("morse", dtype="float64")
    r = relax([_wurtzite()], pot, RelaxSettings(fmax=0.01))[0]
    assert r.spacegroup_before is None and r.spacegroup_after is None and not r.symmetry_changed


def test_space_group_change_is_flagged():
    """A tetragonally strained simple-cubic crystal relaxes back to cubic: P4/mmm → Pm-3m."""
    pot = load_potential("morse", dtype="float64")
    s = AseAtomsAdaptor.get_structure(bulk("Po", "sc", 2.9))
    s.apply_strain([0.0, 0.0, 0.01])
    r = relax([s], pot, RelaxSettings(symmetrize=True, fmax=1e-4, max_steps=1000))[0]
    assert r.converged
    assert (r.spacegroup_before, r.spacegroup_after) == (123, 221)
    assert r.symmetry_changed


@pytest.mark.parametrize("symprec", [1e-5, 1e-3])
def test_symmetry_of_a_rattled_structure_is_trivial(symprec):
    s = _wurtzite()
    s.perturb(0.05)
    ops = find_symmetry(s, symprec)
    assert ops.spacegroup == 1 and len(ops.rotations) == 1


def test_a_rattled_crystal_is_named_with_the_tolerance_that_finds_its_symmetry():
    cu = Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    assert symmetry_hint(cu, 1e-3, "loses X") is None
    rattled = cu.copy()
    for i, shift in enumerate([[0.004, 0, 0], [0, 0.004, 0], [0, 0, -0.004], [-0.003, 0.002, 0]]):
        rattled.translate_sites([i], shift, frac_coords=False)
    hint = symmetry_hint(rattled, 1e-3, "loses X")
    assert hint is not None and "P1 at symprec 0.001" in hint
    assert "Fm-3m (225)" in hint and hint.endswith("(loses X)")
    named = float(hint.split("pass --symprec ")[1].split()[0])
    assert spacegroup_number(rattled, 1e-3) == 1 and spacegroup_number(rattled, named) == 225


def test_a_symmetry_gain_is_told_apart_from_a_change_of_structure():
    from mlipflows.engine.symmetry import symmetry_change_note

    assert symmetry_change_note(1, 227).startswith("relaxed to a higher symmetry during relaxation: 1 → 227")
    assert symmetry_change_note(225, 123) == "space group changed during relaxation: 225 → 123"  # a loss
    assert symmetry_change_note(186, 216).startswith("space group changed")  # wurtzite → zincblende


def test_the_hint_names_the_group_the_input_was_meant_to_have_not_a_subgroup():
    from mlipflows.engine.symmetry import loose_spacegroup
    from tests.conftest import EXAMPLES

    nacl = Structure.from_file(EXAMPLES / "NaCl_rocksalt.cif")  # rattled: Cm at 0.05, Fm-3m at 0.1
    assert loose_spacegroup(nacl, 1e-3) == (225, 0.1)
    assert "Fm-3m (225) at 0.1 Å" in symmetry_hint(nacl, 1e-3)


def test_a_p1_input_that_relaxes_to_another_structure_is_no_gain():
    from mlipflows.campaign.stages import phonon_gate
    from mlipflows.engine.symmetry import symmetry_change_note, symmetry_gain_is_genuine

    # a rattled rocksalt (Fm-3m to 0.1 Å) relaxing back to Fm-3m, or distorting to Cmcm
    assert symmetry_gain_is_genuine(1, 225, loose=225)
    assert not symmetry_gain_is_genuine(1, 63, loose=225)
    assert symmetry_gain_is_genuine(1, 63, loose=None)  # no symmetry to lose at any tolerance
    assert symmetry_change_note(1, 63, loose=225).startswith("space group changed during relaxation: 1 → 63")
    setup = {"symmetry_changed": True, "spacegroup_before": 1, "spacegroup_after": 63}
    assert phonon_gate({"setup": {**setup, "spacegroup_input_loose": 225}}) == "space group changed 1 → 63"
    assert phonon_gate({"setup": {**setup, "spacegroup_after": 225, "spacegroup_input_loose": 225}}) is None
