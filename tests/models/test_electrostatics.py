"""Gaussian-charge Coulomb sums and Qeq: Madelung constant, Ewald splitting independence,
charge conservation, gauge invariance, stationarity, forces and stress of Ewald sums."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule

from mlipflows.engine import Batch
from mlipflows.models.electrostatics import (
    COULOMB_EV_A,
    coulomb_operator,
    diagonal_qeq,
    qeq_energy,
    solve_qeq,
)

F64 = torch.float64


def _self_energy(q: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return (COULOMB_EV_A * q**2 / (2.0 * sigma * np.sqrt(np.pi))).sum()


def test_rock_salt_madelung_constant():
    a = 5.64
    atoms = bulk("NaCl", "rocksalt", a, cubic=True)
    batch = Batch.from_atoms([atoms], dtype=F64)
    q = torch.tensor([1.0 if z == 11 else -1.0 for z in atoms.numbers], dtype=F64)
    sigma = torch.full((8,), 0.02, dtype=F64)  # point-like: neighbours at 2.82 Å see 1/r exactly
    op = coulomb_operator(batch, sigma, real_cutoff=9.0, accuracy=1e-12)
    e_point = float(op.energy(q)[0] - _self_energy(q, sigma))
    madelung = -e_point / (4 * COULOMB_EV_A / (a / 2))  # 4 formula units, nearest distance a/2
    assert madelung == pytest.approx(1.747565, abs=2e-6)


def _charged_crystal() -> tuple[Batch, torch.Tensor, torch.Tensor]:
    atoms = bulk("MgO", "rocksalt", 4.3, cubic=True) * (1, 1, 2)
    atoms.rattle(0.1, seed=1)
    batch = Batch.from_atoms([atoms], dtype=F64)
    rng = np.random.default_rng(0)
    q = torch.as_tensor(rng.normal(size=len(atoms)), dtype=F64)  # net charge ≠ 0 on purpose
    sigma = torch.as_tensor(rng.uniform(0.5, 1.2, size=len(atoms)), dtype=F64)
    return batch, q, sigma


def test_ewald_energy_independent_of_splitting():
    batch, q, sigma = _charged_crystal()
    energies = [
        float(coulomb_operator(batch, sigma, real_cutoff=rc, accuracy=1e-10).energy(q)[0])
        for rc in (7.0, 9.0, 12.0)
    ]
    assert abs(float(q.sum())) > 0.1
    for e in energies[1:]:
        assert e == pytest.approx(energies[0], rel=1e-6)


def test_ewald_forces_and_stress_match_finite_differences():
    batch, q, sigma = _charged_crystal()
    q = q - q.mean()
    from mlipflows.models.geometry import build_graph, forces_and_stress

    graph, inputs = build_graph(batch, cutoff=2.0)
    energy = coulomb_operator(graph.as_batch(), sigma, real_cutoff=8.0, accuracy=1e-10).energy(q)
    forces, stress = forces_and_stress(energy, inputs)

    def e_at(pos: torch.Tensor, cell: torch.Tensor) -> float:
        b = Batch(pos, batch.atomic_numbers, batch.system_idx, cell, batch.pbc)
        return float(coulomb_operator(b, sigma, real_cutoff=8.0, accuracy=1e-10).energy(q)[0])

    h = 1e-4
    for atom, axis in [(0, 0), (5, 2)]:
        d = torch.zeros_like(batch.positions)
        d[atom, axis] = h
        fd = -(e_at(batch.positions + d, batch.cell) - e_at(batch.positions - d, batch.cell)) / (2 * h)
        assert float(forces[atom, axis]) == pytest.approx(fd, abs=1e-6)
    eps = torch.zeros((3, 3), dtype=F64)
    eps[0, 1] = eps[1, 0] = h / 2
    vol = float(batch.volume[0])
    ep = e_at(batch.positions @ (torch.eye(3, dtype=F64) + eps), batch.cell @ (torch.eye(3, dtype=F64) + eps))
    em = e_at(batch.positions @ (torch.eye(3, dtype=F64) - eps), batch.cell @ (torch.eye(3, dtype=F64) - eps))
    assert float(stress[0, 0, 1]) == pytest.approx((ep - em) / (2 * h * vol), abs=1e-6)


def _mixed_atoms() -> list[Atoms]:
    water = molecule("H2O")
    water.pbc = False
    nacl = bulk("NaCl", "rocksalt", 5.6, cubic=True)
    nacl.rattle(0.05, seed=2)
    cluster = Atoms("NaClNa", positions=[[0, 0, 0], [2.4, 0.1, 0], [4.7, 0.5, 0.3]], pbc=False)
    return [water, nacl, cluster]


def _mixed_batch() -> Batch:
    return Batch.from_atoms(_mixed_atoms(), dtype=F64)


def _random_qeq_params(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    chi = torch.as_tensor(rng.normal(scale=2.0, size=n), dtype=F64)
    hardness = torch.as_tensor(rng.uniform(3.0, 10.0, size=n), dtype=F64)
    sigma = torch.as_tensor(rng.uniform(0.6, 1.2, size=n), dtype=F64)
    return chi, hardness, sigma


def test_total_charge_is_conserved_in_a_mixed_batch():
    batch = _mixed_batch()
    total = torch.tensor([0.0, 1.0, -2.0], dtype=F64)
    chi, hardness, sigma = _random_qeq_params(int(batch.positions.shape[0]))
    op = coulomb_operator(batch, sigma, real_cutoff=8.0, accuracy=1e-8)
    for q in (
        solve_qeq(op, chi, hardness, total),
        diagonal_qeq(chi + op.potential(torch.zeros_like(chi)), hardness, total, batch.system_idx),
    ):
        sums = torch.zeros(3, dtype=F64).index_add_(0, batch.system_idx, q)
        np.testing.assert_allclose(sums.numpy(), total.numpy(), atol=1e-10)


def test_shifting_electronegativities_leaves_charges_unchanged():
    batch = _mixed_batch()
    total = torch.tensor([0.0, 1.0, -2.0], dtype=F64)
    chi, hardness, sigma = _random_qeq_params(int(batch.positions.shape[0]), seed=3)
    op = coulomb_operator(batch, sigma, real_cutoff=8.0, accuracy=1e-8)
    exact = solve_qeq(op, chi, hardness, total)
    diag = diagonal_qeq(chi, hardness, total, batch.system_idx)
    np.testing.assert_allclose(solve_qeq(op, chi + 2.7, hardness, total).numpy(), exact.numpy(), atol=1e-10)
    np.testing.assert_allclose(
        diagonal_qeq(chi - 5.0, hardness, total, batch.system_idx).numpy(), diag.numpy(), atol=1e-10
    )
    assert float(exact.abs().max()) > 1e-3  # the charges are not trivially zero


def test_exact_qeq_is_the_constrained_minimum():
    """∂E_Qeq/∂q_i is the same (the Lagrange multiplier) for every atom of a structure."""
    batch = _mixed_batch()
    total = torch.tensor([0.0, 1.0, -2.0], dtype=F64)
    chi, hardness, sigma = _random_qeq_params(int(batch.positions.shape[0]), seed=4)
    op = coulomb_operator(batch, sigma, real_cutoff=8.0, accuracy=1e-10)
    q = solve_qeq(op, chi, hardness, total).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(qeq_energy(op, q, chi, hardness).sum(), q)
    for s in range(3):
        g = grad[batch.system_idx == s]
        np.testing.assert_allclose(g.numpy(), np.full(len(g), float(g.mean())), atol=1e-8)


def test_coulomb_matrix_equals_the_operator_on_unit_charges():
    """The dense A (used by exact Qeq) is φ applied to each unit charge, block by block, and
    its gradient with respect to positions is the same too."""
    mgo = bulk("MgO", "rocksalt", 4.2)
    mgo.rattle(0.05, seed=4)
    # two periodic cells: the reciprocal blocks must not couple them
    batch = Batch.from_atoms([*_mixed_atoms(), mgo], dtype=F64)
    n = int(batch.positions.shape[0])
    _, _, sigma = _random_qeq_params(n, seed=5)
    positions = batch.positions.clone().requires_grad_(True)
    moved = type(batch)(positions, batch.atomic_numbers, batch.system_idx, batch.cell, batch.pbc)
    op = coulomb_operator(moved, sigma, real_cutoff=8.0, accuracy=1e-8)
    dense, applied = op.matrix(), op.potential(torch.eye(n, dtype=F64))
    np.testing.assert_allclose(dense.detach().numpy(), applied.detach().numpy(), atol=1e-10)
    assert float(dense.detach()[batch.system_idx[:, None] != batch.system_idx[None, :]].abs().max()) == 0.0
    weights = torch.as_tensor(np.random.default_rng(1).normal(size=(n, n)), dtype=F64)
    (g_dense,) = torch.autograd.grad((dense * weights).sum(), positions, retain_graph=True)
    (g_applied,) = torch.autograd.grad((applied * weights).sum(), positions)
    np.testing.assert_allclose(g_dense.numpy(), g_applied.numpy(), atol=1e-9)
