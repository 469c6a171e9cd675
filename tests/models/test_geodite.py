"""Geodite-style internals: l = 1 / l = 2 Cartesian features are O(3)-equivariant, scalars and
edge features invariant (the model-level physics is in test_equivariant_physics.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mlipflows.engine import Batch
from mlipflows.models.geometry import build_graph
from tests.models.test_mpnice_physics import _cluster, _crystal
from tests.models.tiny_equivariant import tiny_geodite


@pytest.mark.parametrize("improper", [False, True])
def test_internal_features_are_o3_equivariant(improper):
    model = tiny_geodite()
    rot = torch.tensor(Rotation.random(random_state=3).as_matrix() * (-1.0 if improper else 1.0))
    structures = [_crystal(), _cluster()]
    moved = []
    for a in structures:
        b = a.copy()
        b.set_cell(b.cell @ rot.numpy().T, scale_atoms=False)
        b.positions = b.positions @ rot.numpy().T
        moved.append(b)
    feats = []
    for atoms_list in (structures, moved):
        graph, _ = build_graph(Batch.from_atoms(atoms_list, dtype=torch.float64), model.cutoff)
        feats.append(model.features(graph)[0])
    ref, out = feats
    assert float(ref.v.detach().abs().max()) > 1e-3 and float(ref.t.detach().abs().max()) > 1e-3
    np.testing.assert_allclose(out.h.detach(), ref.h.detach(), atol=1e-10)
    np.testing.assert_allclose(out.e.detach(), ref.e.detach(), atol=1e-10)
    np.testing.assert_allclose(out.v.detach(), torch.einsum("ab,ncb->nca", rot, ref.v).detach(), atol=1e-10)
    rt = torch.einsum("ab,ncbd,ed->ncae", rot, ref.t, rot)
    np.testing.assert_allclose(out.t.detach(), rt.detach(), atol=1e-10)
    # l = 2 features stay symmetric and traceless
    np.testing.assert_allclose(ref.t.detach(), ref.t.transpose(-1, -2).detach(), atol=1e-12)
    np.testing.assert_allclose(ref.t.diagonal(dim1=-2, dim2=-1).sum(-1).detach(), 0.0, atol=1e-12)
