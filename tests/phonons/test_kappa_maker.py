"""KappaMaker with the analytic Morse potential: batching, bookkeeping and phono3py consistency."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.makers.base import ChunkSettings
from mlipflows.makers.kappa import KappaMaker
from mlipflows.phonons.kappa import conductivity, kappa_supercells, make_phono3py, produce_fc2
from mlipflows.potentials import load_potential
from mlipflows.potentials.ase_calculator import MlipflowsCalculator
from tests.phonons.test_phonon_maker import CALLS, warm_references

COUNTING = "tests.phonons.test_phonon_maker:counting_morse"


def _pmg(atoms):
    return AseAtomsAdaptor.get_structure(atoms)


@pytest.fixture(scope="module")
def kappa_docs():
    warm_references()  # the sanity checks' elemental references are not what is counted
    CALLS.clear()
    maker = KappaMaker(
        # a budget that holds every displaced cell, so the batching itself is what is tested
        chunk=ChunkSettings(model=COUNTING, max_atoms=100_000, max_edges=10_000_000),
        relax=None,
        fc3_supercell_matrix=[2, 2, 2],
        fc2_supercell_matrix=[3, 3, 3],
        mesh=[5, 5, 5],
        temperatures=[300.0, 600.0],
    )
    structures = [_pmg(bulk("Cu", "fcc", 3.46)), _pmg(bulk("NaCl", "rocksalt", 5.6))]
    docs = maker.make.original(maker, structures, ["cu", "nacl"])
    return docs, list(CALLS)


def test_fc2_of_all_then_fc3_of_the_stable_ones_in_two_batched_calls(kappa_docs):
    """The reference protocol's gate: fc2 first; fc3 only for structures without imaginary modes."""
    docs, calls = kappa_docs
    n_fc2 = sum(d.setup.n_displacements - d.n_fc3_displacements for d in docs)
    cu, nacl = docs
    assert nacl.kappa_skipped and cu.kappa_skipped is None
    assert calls == [n_fc2, cu.n_fc3_displacements]


def test_kappa_document(kappa_docs):
    docs, _ = kappa_docs
    cu = docs[0]
    assert cu.state == "successful" and cu.has_imaginary_modes is False
    kappa = np.asarray(cu.kappa_tot_rta)
    assert kappa.shape == (2, 6)
    # cubic: isotropic, no off-diagonal components
    np.testing.assert_allclose(kappa[:, 1:3], kappa[:, :1].repeat(2, axis=1), rtol=1e-8)
    np.testing.assert_allclose(kappa[:, 3:], 0.0, atol=1e-6 * kappa[0, 0])
    np.testing.assert_allclose(kappa, np.asarray(cu.kappa_p_rta) + np.asarray(cu.kappa_c))
    # per-mode κ (data store) sums back to the tensor
    mode = np.asarray(cu.mode_kappa)
    np.testing.assert_allclose(mode.sum(axis=(1, 2)) / np.sum(cu.mode_weights), kappa, rtol=1e-6)
    assert cu.fc3_supercell_matrix == np.diag([2, 2, 2]).tolist()
    assert cu.setup.supercell_matrix == np.diag([3, 3, 3]).tolist()


def test_imaginary_modes_skip_kappa_with_the_reason(kappa_docs):
    docs, _ = kappa_docs
    nacl = docs[1]  # a pair potential does not stabilise rock salt
    assert nacl.state == "successful"
    assert nacl.has_imaginary_modes is True
    assert "imaginary modes" in nacl.kappa_skipped and "κ not computed" in nacl.kappa_skipped
    assert any("imaginary" in w for w in nacl.warnings)
    assert nacl.kappa_tot_rta is None and nacl.fc2 is not None


def test_without_the_gate_kappa_of_an_unstable_structure_is_stored_with_a_warning():
    maker = KappaMaker(
        chunk=ChunkSettings(model="morse"),
        relax=None,
        fc3_supercell_matrix=[2, 2, 2],
        mesh=[5, 5, 5],
        require_stable=False,
    )
    nacl = maker.make.original(maker, [_pmg(bulk("NaCl", "rocksalt", 5.6))], ["nacl"])[0]
    assert nacl.state == "successful" and nacl.has_imaginary_modes is True
    assert nacl.kappa_skipped is None and any("κ unreliable" in w for w in nacl.warnings)
    assert nacl.kappa_tot_rta is not None and nacl.mode_kappa is not None


def test_oversized_supercell_is_refused():
    maker = KappaMaker(chunk=ChunkSettings(model="morse"), relax=None, fc3_supercell_matrix=[4, 4, 4])
    maker.max_supercell_atoms = 100
    doc = maker.make.original(maker, [_pmg(bulk("NaCl", "rocksalt", 5.6))], ["nacl"])[0]
    assert doc.state == "failed" and "needs 128 atoms" in doc.error


def test_batched_kappa_equals_a_plain_phono3py_ase_loop():
    """Same κ as phono3py driven one supercell at a time through an ASE calculator."""
    si_like = _pmg(bulk("Cu", "fcc", 3.46))
    maker = KappaMaker(
        chunk=ChunkSettings(model="morse"), relax=None, fc3_supercell_matrix=[2, 2, 2], mesh=[5, 5, 5]
    )
    doc = maker.make.original(maker, [si_like], ["cu"])[0]
    assert doc.setup.displacement == 0.03  # phono3py's default amplitude

    ph3 = make_phono3py(si_like, [2, 2, 2], [2, 2, 2])
    cells3, _ = kappa_supercells(ph3, 0.03)
    calc = MlipflowsCalculator(load_potential("morse"))

    def ase_forces(cells):
        out = []
        for cell in cells:
            atoms = Atoms(cell.symbols, cell=cell.cell, positions=cell.positions, pbc=True)
            atoms.calc = calc
            out.append(atoms.get_forces())
        return out

    f3 = ase_forces(ph3.supercells_with_displacements)
    assert len(f3) == len(cells3)
    produce_fc2(ph3, ase_forces(ph3.phonon_supercells_with_displacements))
    plain = conductivity(ph3, f3, [5, 5, 5])
    np.testing.assert_allclose(doc.kappa_tot_rta, plain.kappa_tot, rtol=1e-6)
