"""A κ run stopped in its fc3 forces resumes from the finished batches, with the same numbers."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from ase.build import bulk
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.home import mlipflows_home
from mlipflows.makers.base import ChunkSettings
from mlipflows.makers.kappa import KappaMaker
from mlipflows.phonons.force_cache import ForceCache
from mlipflows.phonons.kappa import kappa_supercells, make_phono3py
from mlipflows.potentials.morse import MorsePotential
from tests.phonons.test_phonon_maker import warm_references

EVALUATED: list[int] = []
STOP_AFTER: list[int] = []  # [n]: the n+1-th batched call is "killed"


class StoppableMorse(MorsePotential):
    """Morse that counts evaluated systems and raises KeyboardInterrupt at a chosen call."""

    def evaluate(self, batch, compute_stress=True):
        if STOP_AFTER and len(EVALUATED) == STOP_AFTER[0]:
            raise KeyboardInterrupt("the wall-time limit")
        EVALUATED.append(batch.n_systems)
        return super().evaluate(batch, compute_stress)


def stoppable_morse(device: str = "cpu", dtype: torch.dtype = torch.float64) -> MorsePotential:
    return StoppableMorse(device=device)


def _maker(resume: bool = True) -> KappaMaker:
    return KappaMaker(
        # 16 atoms per call: the 8-atom fc3 supercells go two by two, so a stop falls between batches
        chunk=ChunkSettings(model="tests.phonons.test_force_cache:stoppable_morse", max_atoms=16),
        relax=None,
        fc3_supercell_matrix=[2, 2, 2],
        mesh=[5, 5, 5],
        resume_forces=resume,
    )


def _cu():
    return AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", 3.46))


def _cached_files() -> list:
    return list((mlipflows_home() / "cache" / "supercell-forces").rglob("*.npy"))


def test_a_stopped_run_evaluates_only_the_unfinished_supercells_and_gets_the_same_kappa():
    warm_references()  # the sanity checks' elemental references are not what is counted
    EVALUATED.clear()
    STOP_AFTER.clear()
    reference = _maker(resume=False).make.original(_maker(resume=False), [_cu()], ["cu"])[0]
    total = sum(EVALUATED)
    assert reference.state == "successful" and total == reference.setup.n_displacements
    assert not _cached_files()  # without resume_forces nothing is written

    EVALUATED.clear()
    STOP_AFTER.append(3)  # fc2 (one call), then two fc3 batches, then the stop
    maker = _maker()
    with pytest.raises(KeyboardInterrupt):
        maker.make.original(maker, [_cu()], ["cu"])
    finished = sum(EVALUATED)
    assert finished < total and len(_cached_files()) == finished

    EVALUATED.clear()
    STOP_AFTER.clear()
    resumed = maker.make.original(maker, [_cu()], ["cu"])[0]
    # the fc2 cell is also fc3's first one (same supercell and displacement): evaluated once
    cells3, cells2 = kappa_supercells(make_phono3py(_cu(), [2, 2, 2], [2, 2, 2]), 0.03)
    unique = len({ForceCache.key(s) for s in cells3 + cells2})
    assert unique == total - 1
    assert sum(EVALUATED) == unique - finished
    np.testing.assert_array_equal(resumed.kappa_tot_rta, reference.kappa_tot_rta)
    assert not _cached_files()  # the material is done: its forces are gone from the disk


def test_entries_are_for_one_model_and_one_bit_identical_supercell():
    cell = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", 3.46) * (2, 2, 2))
    forces = np.random.default_rng(0).normal(size=(len(cell), 3))
    cache = ForceCache(MorsePotential())
    cache.put(cell, forces)
    np.testing.assert_array_equal(cache.get(cell), forces)

    moved = cell.copy()
    moved.translate_sites([0], [1e-9, 0, 0], frac_coords=False)
    assert cache.get(moved) is None
    assert ForceCache(MorsePotential(depth=0.31)).get(cell) is None  # another model
    assert ForceCache(MorsePotential(dtype=torch.float32)).get(cell) is None  # its float32 twin

    cache._path(cell).write_bytes(b"truncated by a kill")
    assert cache.get(cell) is None  # an unreadable entry is recomputed, never trusted
    cache.discard([cell])
    assert not cache.folder.exists()


def test_runs_sharing_a_home_can_write_the_same_supercell_at_once(caplog):
    cell = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", 3.46) * (2, 2, 2))
    forces = np.random.default_rng(1).normal(size=(len(cell), 3))
    cache = ForceCache(MorsePotential())

    def write() -> None:
        for _ in range(40):
            cache.put(cell, forces)

    caplog.set_level("DEBUG", logger="mlipflows.phonons.force_cache")
    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "cannot cache" not in caplog.text  # one shared temporary name lost writes here
    np.testing.assert_array_equal(cache.get(cell), forces)
    assert [p.name for p in cache.folder.iterdir()] == [cache._path(cell).name]  # no leftovers
    assert cache._path(cell).stat().st_mode & 0o777 == 0o644  # readable by a shared home's others


def test_a_write_that_fails_leaves_no_file_behind(monkeypatch):
    cell = AseAtomsAdaptor.get_structure(bulk("Cu", "fcc", 3.46) * (2, 2, 2))
    cache = ForceCache(MorsePotential())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", disk_full)
    cache.put(cell, np.zeros((len(cell), 3)))  # only costs a recomputation after a stop
    assert cache.get(cell) is None
    assert list(cache.folder.iterdir()) == []
    cache.discard([cell])
    assert not cache.folder.exists()
