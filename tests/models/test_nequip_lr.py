"""NequIP-LR-style internals: irreps features O(3)-equivariant, charges from the exact global
Qeq (Σq = Q, stationarity of E_Qeq, periodic and finite), charges feeding the later layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mlipflows.engine import Batch
from mlipflows.models.electrostatics import coulomb_operator, qeq_energy
from mlipflows.models.geometry import build_graph
from tests.models.test_mpnice_physics import _cluster, _crystal
from tests.models.tiny_equivariant import tiny_nequip_lr

F64 = torch.float64


def _features(model, atoms_list, charges):
    batch = Batch.from_atoms(atoms_list, dtype=F64)
    graph, _ = build_graph(batch, model.cutoff, torch.tensor(charges, dtype=F64))
    return graph, model.features(graph)


@pytest.mark.parametrize("improper", [False, True])
def test_internal_irreps_features_are_o3_equivariant(improper):
    model = tiny_nequip_lr()
    rot = Rotation.random(random_state=3).as_matrix() * (-1.0 if improper else 1.0)
    structures = [_crystal(), _cluster()]
    moved = []
    for a in structures:
        b = a.copy()
        b.set_cell(b.cell @ rot.T, scale_atoms=False)
        b.positions = b.positions @ rot.T
        moved.append(b)
    _, ref = _features(model, structures, [1.0, 0.0])
    _, out = _features(model, moved, [1.0, 0.0])
    default = torch.get_default_dtype()
    torch.set_default_dtype(F64)  # e3nn builds its Wigner-D constants in the default dtype
    try:
        d = model.irreps_hidden.D_from_matrix(torch.tensor(rot))
    finally:
        torch.set_default_dtype(default)
    ns = model.cfg.n_scalars
    assert float(ref["h"][:, ns:].detach().abs().max()) > 1e-3  # l = 1, 2 channels are populated
    np.testing.assert_allclose(out["h"].detach(), (ref["h"] @ d.T).detach(), atol=1e-10)
    np.testing.assert_allclose(out["charges"].detach(), ref["charges"].detach(), atol=1e-10)


def test_charges_solve_the_global_qeq_exactly_for_crystals_and_molecules():
    model = tiny_nequip_lr()
    graph, f = _features(model, [_crystal(), _cluster()], [2.0, -1.0])
    q = f["charges"].detach().requires_grad_(True)
    n0 = len(_crystal())
    assert float(q[:n0].detach().sum()) == pytest.approx(2.0, abs=1e-10)
    assert float(q[n0:].detach().sum()) == pytest.approx(-1.0, abs=1e-10)
    chi, hardness, sigma = (x.detach() for x in model.qeq_parameters(f["short"], graph.atomic_numbers))
    operator = coulomb_operator(graph.as_batch(), sigma, model.cfg.ewald_cutoff, model.cfg.ewald_accuracy)
    (grad,) = torch.autograd.grad(qeq_energy(operator, q, chi, hardness).sum(), q)
    # stationary under the constraint: ∂E/∂q_i = λ_s, the same for every atom of a structure
    for part in (grad[:n0], grad[n0:]):
        np.testing.assert_allclose(part.numpy(), float(part.mean()), atol=1e-8)
    assert float(q.detach().abs().max()) > 1e-3


def test_charges_feed_the_later_equivariant_layers():
    """Changing only the total charge changes the short-range energy (through the encoded
    charges), not only E_Qeq; and a batched structure equals the same structure alone."""
    model = tiny_nequip_lr()
    cluster = _cluster()
    _, neutral = _features(model, [cluster], [0.0])
    _, charged = _features(model, [cluster], [1.0])
    np.testing.assert_allclose(neutral["short"].detach(), charged["short"].detach(), atol=1e-12)
    assert float((neutral["h"] - charged["h"]).detach().abs().max()) > 1e-4
    _, both = _features(model, [_crystal(), cluster], [0.0, 1.0])
    n0 = len(_crystal())
    np.testing.assert_allclose(both["h"][n0:].detach(), charged["h"].detach(), atol=1e-10)
