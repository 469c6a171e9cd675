"""Physics of the MPNICE-style model (float64, random weights): symmetries, conservative forces
and stress, extensivity, smoothness at the cutoff, short-range and isolated-atom limits, charge
conservation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from scipy.spatial.transform import Rotation

from mlipflows.engine import Batch
from mlipflows.models.potential import predict
from mlipflows.models.zbl import ZBLRepulsion
from tests.models.conftest import tiny_mpnice

F64 = torch.float64


def _crystal() -> Atoms:
    atoms = bulk("NaCl", "rocksalt", 5.0, cubic=True)
    atoms.rattle(0.15, seed=3)
    return atoms


def _cluster() -> Atoms:
    rng = np.random.default_rng(5)
    pos = rng.uniform(0, 3.5, size=(5, 3))
    return Atoms("NaClOHH", positions=pos, pbc=False)


def _pred(model, atoms_list, charges=None, head=None):
    batch = Batch.from_atoms(atoms_list, dtype=F64)
    total = None if charges is None else torch.tensor(charges, dtype=F64)
    heads = None if head is None else torch.tensor(head)
    return predict(model, batch, total_charge=total, head=heads)


def test_rotation_translation_permutation_invariance(model):
    crystal, cluster = _crystal(), _cluster()
    ref = _pred(model, [crystal, cluster], charges=[1.0, -1.0])
    rot = Rotation.random(random_state=1).as_matrix()
    moved = []
    perms = []
    for k, a in enumerate([crystal, cluster]):
        b = a.copy()
        perm = np.random.default_rng(k).permutation(len(b))
        b = b[perm]
        b.set_cell(b.cell @ rot.T, scale_atoms=False)
        b.positions = b.positions @ rot.T + np.array([0.3, -1.2, 2.0])
        moved.append(b)
        perms.append(perm)
    out = _pred(model, moved, charges=[1.0, -1.0])
    np.testing.assert_allclose(out.energy.detach(), ref.energy.detach(), rtol=1e-10, atol=1e-10)
    n0 = len(crystal)
    for perm, sl in zip(perms, [slice(0, n0), slice(n0, None)], strict=True):
        f_ref = ref.forces[sl][perm].numpy() @ rot.T
        np.testing.assert_allclose(out.forces[sl].numpy(), f_ref, atol=1e-9)
        np.testing.assert_allclose(out.charges[sl].detach(), ref.charges[sl][perm].detach(), atol=1e-10)
    s_ref = rot @ ref.stress[0].numpy() @ rot.T
    np.testing.assert_allclose(out.stress[0].numpy(), s_ref, atol=1e-9)
    assert float(ref.forces.abs().max()) > 1e-2  # the check is not on vanishing forces


def _energy(model, atoms, charge=0.0):
    return float(_pred(model, [atoms], charges=[charge]).energy[0].detach())


def test_forces_and_stress_match_finite_differences(model):
    atoms = _crystal()
    out = _pred(model, [atoms], charges=[1.0])
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (7, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(_energy(model, plus, 1.0) - _energy(model, minus, 1.0)) / (2 * h)
        assert float(out.forces[atom, axis]) == pytest.approx(fd, abs=1e-6)
    for i, j in [(0, 0), (1, 2)]:
        eps = np.zeros((3, 3))
        eps[i, j] = eps[j, i] = h if i == j else h / 2
        es = []
        for sign in (1, -1):
            b = atoms.copy()
            b.set_cell(atoms.cell @ (np.eye(3) + sign * eps), scale_atoms=True)
            es.append(_energy(model, b, 1.0))
        fd = (es[0] - es[1]) / (2 * h * atoms.get_volume())
        assert float(out.stress[0, i, j]) == pytest.approx(fd, abs=1e-7)


def test_supercell_is_extensive(model):
    atoms = _crystal()
    small = _pred(model, [atoms])
    big = _pred(model, [atoms * (2, 2, 2)])
    assert float(big.energy[0].detach()) == pytest.approx(8 * float(small.energy[0].detach()), rel=1e-7)
    tiled = np.tile(small.forces.numpy(), (8, 1))
    np.testing.assert_allclose(big.forces.numpy(), tiled, atol=1e-7)
    np.testing.assert_allclose(big.stress.numpy(), small.stress.numpy(), atol=1e-8)


def assert_smooth_through_cutoff(model) -> None:
    """A dimer pulled through r_c: beyond it E = ΣE0, F = 0, dF/dr = 0 exactly; inside, the
    deviations vanish as (r_c - r)³, (r_c - r)² and (r_c - r) (C² envelope), so halving the
    distance to r_c divides them by about 8, 4 and 2 (a jump would not shrink at all)."""
    rc = model.cutoff

    def ef(x: float) -> tuple[float, float]:
        p = _pred(model, [Atoms("SiO", positions=[[0, 0, 0], [x, 0, 0]], pbc=False)])
        return float(p.energy[0].detach()), float(p.forces[1, 0])

    def efd(x: float) -> np.ndarray:
        h = 1e-6
        e, f = ef(x)
        return np.array([e, f, (ef(x + h)[1] - ef(x - h)[1]) / (2 * h)])

    outside = efd(rc + 1e-3)
    e0 = float(model.readout.e0[0, 14] + model.readout.e0[0, 8])
    np.testing.assert_allclose(outside, [e0, 0.0, 0.0], atol=1e-9)
    far, near = efd(rc - 0.04) - outside, efd(rc - 0.02) - outside
    assert np.all(np.abs(far) > 1e-10)  # the pair does interact inside r_c
    ratios = np.abs(far / near)
    assert ratios[0] > 6.0 and ratios[1] > 3.0 and ratios[2] > 1.6, ratios


def test_energy_forces_and_force_derivative_continuous_at_cutoff():
    assert_smooth_through_cutoff(tiny_mpnice(electrostatics=False, zbl=False))


def test_short_range_limit_is_zbl(model):
    zbl = ZBLRepulsion().double()
    for r in (0.05, 0.2):
        a = Atoms("Si2", positions=[[0, 0, 0], [r, 0, 0]], pbc=False)
        e = _energy(model, a)
        ref = float(zbl.pair_energy(torch.tensor([r], dtype=F64), torch.tensor([14]), torch.tensor([14]))[0])
        assert e == pytest.approx(ref, rel=2e-3)
    # r·E → k_e Z² (bare nuclear repulsion) as r → 0
    a = Atoms("Si2", positions=[[0, 0, 0], [1e-4, 0, 0]], pbc=False)
    assert 1e-4 * _energy(model, a) == pytest.approx(14.399645 * 14 * 14, rel=2e-3)


def test_isolated_atom_returns_its_head_e0(model):
    for head in (0, 1):
        for symbol, z in (("Si", 14), ("Na", 11)):
            out = _pred(model, [Atoms(symbol, positions=[[1.0, 2.0, 3.0]], pbc=False)], head=[head])
            assert float(out.energy[0]) == float(model.readout.e0[head, z])
            assert float(out.forces.abs().max()) == 0.0


def test_total_charge_input_and_batched_equals_single(model):
    crystal, cluster = _crystal(), _cluster()
    out = _pred(model, [crystal, cluster], charges=[2.0, -1.0], head=[1, 0])
    n0 = len(crystal)
    assert float(out.charges[:n0].sum()) == pytest.approx(2.0, abs=1e-10)
    assert float(out.charges[n0:].sum()) == pytest.approx(-1.0, abs=1e-10)
    one = _pred(model, [cluster], charges=[-1.0], head=[0])
    assert float(out.energy[1]) == pytest.approx(float(one.energy[0]), abs=1e-10)
    np.testing.assert_allclose(out.forces[n0:].numpy(), one.forces.numpy(), atol=1e-10)
    neutral = _pred(model, [cluster], charges=[0.0], head=[0])
    assert abs(float(neutral.energy[0]) - float(one.energy[0])) > 1e-3


def test_calibrated_standardisation_keeps_physics():
    """After data-derived feature standardisation the features have unit spread on the
    calibration atoms, forces stay −∇E and a lone atom still returns E0."""
    from mlipflows.models.geometry import build_graph

    model = tiny_mpnice(seed=2)
    batch = Batch.from_atoms([_crystal(), _cluster()], dtype=F64)
    graph, _ = build_graph(batch, model.cutoff, torch.tensor([1.0, -1.0], dtype=F64))
    model.calibrate(graph)
    assert float(model.blocks[0].feature_scale.max()) > 1.0  # something was rescaled
    atoms = _crystal()
    out = _pred(model, [atoms], charges=[0.0])
    h = 1e-5
    plus, minus = atoms.copy(), atoms.copy()
    plus.positions[2, 1] += h
    minus.positions[2, 1] -= h
    fd = -(_energy(model, plus) - _energy(model, minus)) / (2 * h)
    assert float(out.forces[2, 1]) == pytest.approx(fd, abs=1e-6)
    lone = _pred(model, [Atoms("Cl", positions=[[0.0, 0.0, 0.0]], pbc=False)])
    assert float(lone.energy[0].detach()) == float(model.readout.e0[0, 17])
