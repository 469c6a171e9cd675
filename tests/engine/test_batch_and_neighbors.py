from __future__ import annotations

import numpy as np
import pytest
from ase.neighborlist import neighbor_list as ase_neighbor_list
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.engine import Batch
from mlipflows.engine.cell_filter import expm_frechet
from mlipflows.engine.neighbors import neighbor_list


def test_batch_round_trip(structures):
    batch = Batch.from_structures(structures)
    assert batch.n_systems == len(structures)
    assert batch.n_atoms.tolist() == [len(s) for s in structures]
    back = batch.to_structures()
    for a, b in zip(structures, back, strict=True):
        np.testing.assert_allclose(a.cart_coords, b.cart_coords)
        assert a.species == b.species


@pytest.mark.parametrize("cutoff", [2.5, 5.0, 7.0])
def test_neighbor_list_matches_ase(structures, cutoff):
    batch = Batch.from_structures(structures)
    graph = neighbor_list(batch, cutoff)
    vec = graph.edge_vectors(batch.positions, batch.cell)
    offsets = np.concatenate([[0], np.cumsum(batch.n_atoms.numpy())])
    for s, structure in enumerate(structures):
        atoms = AseAtomsAdaptor.get_atoms(structure)
        d_ase = np.sort(ase_neighbor_list("d", atoms, cutoff))
        mask = (graph.edge_system == s).numpy()
        d_ours = np.sort(np.linalg.norm(vec[mask].numpy(), axis=1))
        np.testing.assert_allclose(d_ours, d_ase, atol=1e-10)
        i = graph.edge_index[0, mask].numpy()
        assert ((i >= offsets[s]) & (i < offsets[s + 1])).all()


def test_small_cell_keeps_periodic_self_images():
    from ase.build import bulk

    atoms = bulk("Cu", "fcc", 3.6)  # one atom: every neighbour is a periodic image of itself
    batch = Batch.from_atoms([atoms])
    graph = neighbor_list(batch, 3.0)
    assert graph.n_edges == 12
    assert (graph.edge_index[0] == graph.edge_index[1]).all()


def test_expm_frechet_matches_scipy():
    from scipy.linalg import expm_frechet as scipy_frechet

    rng = np.random.default_rng(3)
    a, e = rng.normal(size=(3, 3)) * 0.1, rng.normal(size=(3, 3))
    import torch

    ours = expm_frechet(torch.tensor(a)[None], torch.tensor(e)[None])[0].numpy()
    np.testing.assert_allclose(ours, scipy_frechet(a, e, compute_expm=False), atol=1e-12)


def test_cpu_allocator_tuning_is_idempotent():
    import sys

    from mlipflows.engine.cpu_memory import tune_cpu_allocator

    first = tune_cpu_allocator()
    assert tune_cpu_allocator() == first
    if sys.platform.startswith("linux"):
        assert first  # glibc accepts both thresholds
