"""Physics of our architectures (Geodite-, NequIP-LR- and MPNICE-style; float64, random
weights): O(3) invariance of E and equivariance of forces/stress (proper and improper
rotations), F = -∇E and stress by finite differences, extensivity, smoothness at the cutoff,
isolated atom = E0, checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from scipy.spatial.transform import Rotation

from mlipflows.engine import Batch
from mlipflows.models.checkpoint import save_checkpoint
from mlipflows.models.potential import predict
from mlipflows.potentials import clear_cache, load_potential

# the structures and the prediction helper of the part-1 physics tests, reused as they are
from tests.models.test_mpnice_physics import _cluster, _crystal, _pred, assert_smooth_through_cutoff
from tests.models.tiny_equivariant import FACTORIES, SHORT_RANGE

F64 = torch.float64
ARCHS = sorted(FACTORIES)


@pytest.fixture(scope="module", params=ARCHS)
def arch(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def model(arch):
    return FACTORIES[arch]()


def _energy(model, atoms) -> float:
    return float(_pred(model, [atoms]).energy[0].detach())


@pytest.mark.parametrize("improper", [False, True])
def test_energy_invariant_forces_stress_equivariant_under_o3(model, improper):
    crystal, cluster = _crystal(), _cluster()
    ref = _pred(model, [crystal, cluster])
    rot = Rotation.random(random_state=7).as_matrix() * (-1.0 if improper else 1.0)
    moved = []
    for a in (crystal, cluster):
        b = a.copy()
        b.set_cell(b.cell @ rot.T, scale_atoms=False)
        b.positions = b.positions @ rot.T + np.array([0.3, -1.2, 2.0])
        moved.append(b)
    out = _pred(model, moved)
    np.testing.assert_allclose(out.energy.detach(), ref.energy.detach(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.forces.numpy(), ref.forces.numpy() @ rot.T, atol=1e-9)
    np.testing.assert_allclose(out.stress[0].numpy(), rot @ ref.stress[0].numpy() @ rot.T, atol=1e-10)
    assert float(ref.forces.abs().max()) > 1e-3  # not a check on vanishing forces


def test_forces_and_stress_match_finite_differences(model):
    atoms = _crystal()
    out = _pred(model, [atoms])
    h = 1e-5
    for atom, axis in [(0, 0), (3, 1), (7, 2)]:
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(_energy(model, plus) - _energy(model, minus)) / (2 * h)
        assert float(out.forces[atom, axis]) == pytest.approx(fd, abs=1e-7)
    for i, j in [(0, 0), (1, 2)]:
        eps = np.zeros((3, 3))
        eps[i, j] = eps[j, i] = h if i == j else h / 2
        es = []
        for sign in (1, -1):
            b = atoms.copy()
            b.set_cell(atoms.cell @ (np.eye(3) + sign * eps), scale_atoms=True)
            es.append(_energy(model, b))
        fd = (es[0] - es[1]) / (2 * h * atoms.get_volume())
        assert float(out.stress[0, i, j]) == pytest.approx(fd, abs=1e-8)


def test_supercell_is_extensive(model):
    atoms = _crystal()
    small = _pred(model, [atoms])
    big = _pred(model, [atoms * (2, 2, 1)])
    assert float(big.energy[0].detach()) == pytest.approx(4 * float(small.energy[0].detach()), rel=1e-9)
    np.testing.assert_allclose(big.forces.numpy(), np.tile(small.forces.numpy(), (4, 1)), atol=1e-9)
    np.testing.assert_allclose(big.stress.numpy(), small.stress.numpy(), atol=1e-10)


def test_small_cell_with_periodic_self_images():
    """A 1-atom cell shorter than r_c: every neighbour is a periodic image of the atom itself.
    Those edges must be kept (the energy differs from the lone atom's E0 and matches the 2×1×1
    supercell per atom)."""
    model = FACTORIES[ARCHS[0]](zbl=False)
    atoms = Atoms("Si", cell=np.diag([2.4, 8.0, 8.0]), pbc=True)
    e1 = _energy(model, atoms)
    assert abs(e1 - float(model.readout.e0[0, 14])) > 1e-4
    assert _energy(model, atoms * (2, 1, 1)) == pytest.approx(2 * e1, rel=1e-10)


def test_energy_forces_and_force_derivative_continuous_at_cutoff(arch):
    assert_smooth_through_cutoff(FACTORIES[arch](**SHORT_RANGE[arch]))


def test_isolated_atom_returns_its_head_e0(model):
    for head in (0, 1):
        for symbol, z in (("Si", 14), ("Na", 11)):
            out = _pred(model, [Atoms(symbol, positions=[[1.0, 2.0, 3.0]], pbc=False)], head=[head])
            assert float(out.energy[0].detach()) == float(model.readout.e0[head, z])
            assert float(out.forces.abs().max()) == 0.0


def test_checkpoint_round_trip_through_load_potential(model, arch, tmp_path):
    path = save_checkpoint(model, tmp_path / f"{arch}.pt", metadata={"name": arch})
    clear_cache()
    pot = load_potential(str(path), dtype=F64)
    batch = Batch.from_atoms([_crystal()], dtype=F64)
    out, ref = pot.evaluate(batch), predict(model, batch)
    assert float(out.energy[0]) == pytest.approx(float(ref.energy[0].detach()), abs=1e-12)
    np.testing.assert_allclose(out.forces.numpy(), ref.forces.numpy(), atol=1e-12)
    clear_cache()
