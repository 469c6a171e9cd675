"""PhononMaker end to end with the analytic Morse potential (cheap, exact forces)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from jobflow import run_locally
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.makers.base import ChunkSettings
from mlipflows.makers.phonons import PhononMaker
from mlipflows.phonons.harmonic import imaginary_mode_flags, make_phonopy, supercell_matrix_for
from mlipflows.potentials.morse import MorsePotential
from mlipflows.store import get_job_store

R_GAS = 8.314462618  # J/(K·mol)
CALLS: list[int] = []


class CountingMorse(MorsePotential):
    """Morse that records the number of systems of every batched call."""

    def evaluate(self, batch, compute_stress=True):
        CALLS.append(batch.n_systems)
        return super().evaluate(batch, compute_stress)


def warm_references() -> None:
    """Relax the elemental references the sanity checks use, before calls are counted."""
    from mlipflows.engine.sanity import elemental_energies
    from mlipflows.potentials import load_potential

    elemental_energies(load_potential("tests.phonons.test_phonon_maker:counting_morse"), {"Cu", "Na", "Cl"})


def counting_morse(device: str = "cpu", dtype: torch.dtype = torch.float64) -> MorsePotential:
    pot = CountingMorse(device=device)
    pot.card.name = "counting-morse"
    return pot


def _pmg(atoms):
    return AseAtomsAdaptor.get_structure(atoms)


@pytest.fixture(scope="module")
def phonon_run(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLIPFLOWS_HOME", str(home))
        mp.chdir(home)
        return _run_phonons()


def _run_phonons():
    po = _pmg(bulk("Po", "sc", 2.6))
    po.apply_strain([0.0, 0.0, 0.01])  # relaxes back to cubic: a recorded space-group change
    structures = [
        _pmg(bulk("Cu", "fcc", 3.6)),
        _pmg(bulk("Si", "diamond", 5.43)),  # a pair potential cannot hold diamond: imaginary modes
        po,
        _pmg(bulk("NaCl", "rocksalt", 5.6, cubic=True) * (2, 2, 2)),  # 64 atoms > max
    ]
    ids = ["cu", "si", "po", "nacl-big"]
    maker = PhononMaker(
        chunk=ChunkSettings(model="morse"), min_length=6.0, max_supercell_atoms=40, mesh=[8, 8, 8]
    )
    job = maker.make(structures, ids)
    store = get_job_store()
    run_locally(job, store=store, ensure_success=True, log=False)
    docs = {d["structure_id"]: d for d in store.get_output(job.uuid, load=True)}
    results = store.additional_stores["results"]
    results.connect()
    flat = {d["structure_id"]: d for d in results.query({"task_type": "phonon"})}
    return docs, flat


def test_stable_crystal_thermodynamics(phonon_run):
    docs, _ = phonon_run
    cu = docs["cu"]
    assert cu["state"] == "successful"
    assert cu["has_imaginary_modes"] is False
    assert cu["setup"]["supercell_matrix"] == np.diag([3, 3, 3]).tolist()
    assert cu["setup"]["relax"]["converged"] and cu["setup"]["relax"]["max_force"] < 1e-4
    # one atom per primitive cell: C_v → 3R (Dulong-Petit), F decreases with T, S ≥ 0
    assert cu["heat_capacity"][-1] == pytest.approx(3 * R_GAS, rel=0.02)
    assert np.all(np.diff(cu["free_energy"]) < 0)
    assert min(cu["entropy"]) >= 0
    # the big arrays came back from the data store
    fc = np.asarray(cu["force_constants"])
    assert fc.shape[-2:] == (3, 3)
    np.testing.assert_allclose(fc.sum(axis=1), 0.0, atol=1e-8)  # acoustic sum rule
    assert len(cu["band_structure"]["frequencies"]) == len(cu["band_structure"]["qpoints"])


def test_imaginary_modes_are_flagged_and_stored(phonon_run):
    docs, flat = phonon_run
    si = docs["si"]
    assert si["state"] == "successful"
    assert si["has_imaginary_modes"] is True
    assert si["min_frequency"] < -1.0
    assert any("imaginary" in w for w in si["warnings"])
    assert si["band_structure"] is not None and si["force_constants"] is not None
    assert flat["si"]["has_imaginary_modes"] is True
    assert "force_constants" not in flat["si"] and "band_structure" not in flat["si"]


def test_symmetry_change_is_recorded(phonon_run):
    docs, _ = phonon_run
    po = docs["po"]["setup"]
    assert (po["spacegroup_before"], po["spacegroup_after"]) == (123, 221)
    assert po["symmetry_changed"]
    # P4/mmm → Pm-3m: the tetragonal input found its cubic form, said as such
    assert any(
        "relaxed to a higher symmetry during relaxation: 123 → 221" in w for w in docs["po"]["warnings"]
    )


def test_too_large_supercell_is_refused_with_its_size(phonon_run):
    docs, flat = phonon_run
    big = docs["nacl-big"]
    assert big["state"] == "failed"
    assert "needs 64 atoms" in big["error"] and "max_atoms=40" in big["error"]
    assert flat["nacl-big"]["state"] == "failed"


def test_all_displacements_in_one_batched_call():
    warm_references()  # the sanity checks' elemental references are not what is counted
    CALLS.clear()
    structures = [_pmg(bulk("Cu", "fcc", 3.6)), _pmg(bulk("NaCl", "rocksalt", 5.6))]
    maker = PhononMaker(
        chunk=ChunkSettings(model="tests.phonons.test_phonon_maker:counting_morse"),
        relax=None,
        supercell_matrix=[2, 2, 2],
        mesh=[4, 4, 4],
    )
    docs = maker.make.original(maker, structures, ["cu", "nacl"])
    n_disp = [d.setup.n_displacements for d in docs]
    assert n_disp == [1, 2]
    assert CALLS == [3]  # three displaced supercells of two materials: one batched evaluation


@pytest.mark.parametrize(
    ("freqs", "expected"),
    [  # Matbench Discovery's own test cases for check_imaginary_freqs, then one per rule
        ([[0.1, 0.2, 0.3, 0.4]], False),
        ([[0.1, 0.2, -0.3, 0.4]], True),
        ([[0.1, 0.2, 0.3], [-0.1, 0.2, 0.3]], True),
        ([[-1e-2, -0.1, 0.2, 0.3]], True),
        (np.full((2, 4), np.nan), True),
        ([[-0.005, 0.0, 0.0, 5.0], [1.0, 1.0, 2.0, 5.0]], False),  # within the Γ acoustic tolerance
        ([[-0.005, -0.004, -0.003, -0.002], [1.0, 1.0, 2.0, 5.0]], True),  # Γ optical < 0
        ([[0.0, 0.0, 0.0, 5.0], [-1e-4, 1.0, 2.0, 5.0]], True),  # off Γ < 0
    ],
)
def test_imaginary_rule_matches_matbench_discovery(freqs, expected):
    assert imaginary_mode_flags(np.asarray(freqs, dtype=float))["any"] is expected


def test_supercell_from_minimum_length_uses_periodic_widths():
    s = _pmg(bulk("Cu", "fcc", 3.6))  # primitive fcc: |a| = 2.55 Å but width a/√3 = 2.08 Å
    np.testing.assert_array_equal(supercell_matrix_for(s, 6.0), np.diag([3, 3, 3]))
    np.testing.assert_array_equal(supercell_matrix_for(s, 2.0), np.eye(3, dtype=int))


def _phonopy_widths(structure, matrix) -> list[float]:
    cell = make_phonopy(structure, matrix).supercell.cell
    volume = abs(np.linalg.det(cell))
    return [volume / np.linalg.norm(np.cross(cell[(i + 1) % 3], cell[(i + 2) % 3])) for i in range(3)]


def test_supercell_of_a_primitive_cell_repeats_the_conventional_one_when_that_is_smaller():
    lif = _pmg(bulk("LiF", "rocksalt", 4.07))  # 2-atom primitive: 4×4×4 of it is 128 atoms
    matrix = supercell_matrix_for(lif, 8.0)
    assert round(abs(np.linalg.det(matrix))) * len(lif) == 64  # 2×2×2 conventional cubes
    assert min(_phonopy_widths(lif, matrix)) >= 8.0
    # a C-centred orthorhombic primitive cell: the transform is not symmetric, so phonopy's
    # column convention matters
    base = Structure(
        Lattice.orthorhombic(3.0, 5.0, 4.0),
        ["Na", "Na", "Cl", "Cl"],
        [[0, 0, 0], [0.5, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0.5]],
    )
    primitive = base.get_primitive_structure()
    assert len(primitive) == 2
    matrix = supercell_matrix_for(primitive, 9.0)
    assert not np.array_equal(matrix, np.diag(np.diag(matrix)))
    assert min(_phonopy_widths(primitive, matrix)) >= 9.0 - 1e-9


def test_a_failing_structure_does_not_sink_the_chunk():
    """A model that returns NaN for Kr: Kr's phonons fail with the reason, Cu's are stored."""
    structures = [_pmg(bulk("Kr", "fcc", 5.7)), _pmg(bulk("Cu", "fcc", 3.6))]
    relaxed = PhononMaker(chunk=ChunkSettings(model="tests.helpers:nan_for_kr"), supercell_matrix=[2, 2, 2])
    kr, cu = relaxed.make.original(relaxed, structures, ["kr", "cu"])
    assert kr.state == "failed" and "relaxation failed" in kr.error and "non-finite" in kr.error
    assert cu.state == "successful"
    unrelaxed = PhononMaker(
        chunk=ChunkSettings(model="tests.helpers:nan_for_kr"), relax=None, supercell_matrix=[2, 2, 2]
    )
    kr, cu = unrelaxed.make.original(unrelaxed, structures, ["kr", "cu"])
    assert kr.state == "failed" and "displaced supercell 0 failed" in kr.error
    assert cu.state == "successful"


def test_a_supercell_narrower_than_the_interaction_range_is_flagged():
    from mlipflows.makers.phonons import supercell_width_warning

    cu = 3.61 * np.eye(3)  # the conventional fcc cell alone, morse cutoff 6 Å
    assert "supercell only 3.6 Å wide" in supercell_width_warning(cu, 6.0)
    assert supercell_width_warning(3 * cu, 5.0) is None  # 10.8 Å ≥ 2 × 5 Å
