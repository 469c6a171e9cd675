"""Golden harmonic-phonon checks, no MLIP: our phonopy path fed with VASP forces from phonopy's examples.

Our path builds the Phonopy object from a pymatgen Structure, generates the displacements
itself and is fed the DFT forces; the reference is phonopy's own route (``phonopy.load`` on
the example's ``phonopy_disp.yaml`` + ``FORCE_SETS``). Data: tests/data/phonons/README.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import phonopy
import pytest
from phonopy.file_IO import parse_FORCE_SETS
from phonopy.interface.vasp import read_vasp
from pymatgen.io.phonopy import get_pmg_structure
from pymatgen.io.vasp import Vasprun

from mlipflows.phonons.harmonic import displaced_supercells, harmonic_properties, make_phonopy

DATA = Path(__file__).parents[1] / "data" / "phonons"
MESH = [8, 8, 8]
TEMPERATURES = [0.0, 100.0, 300.0, 1000.0]


def _dft_forces(name: str, n_displacements: int) -> list[np.ndarray]:
    if name == "Si":  # one displacement, forces straight from VASP's vasprun.xml
        forces = Vasprun(DATA / "Si__vasprun.xml", parse_dos=False, parse_eigen=False).ionic_steps[-1][
            "forces"
        ]
        return [np.asarray(forces)]
    dataset = parse_FORCE_SETS(filename=str(DATA / f"{name}__FORCE_SETS"))
    assert len(dataset["first_atoms"]) == n_displacements
    return [np.asarray(d["forces"]) for d in dataset["first_atoms"]]


def _reference(name: str) -> phonopy.Phonopy:
    """phonopy's own route: the example's displacement yaml + forces, no NAC."""
    ref = phonopy.load(DATA / f"{name}__phonopy_disp.yaml", produce_fc=False, is_nac=False, log_level=0)
    ref.forces = _dft_forces(name, len(ref.dataset["first_atoms"]))
    ref.produce_force_constants()
    ref.symmetrize_force_constants()
    return ref


@pytest.mark.parametrize("name", ["NaCl", "MgO", "Si"])
def test_phonopy_path_reproduces_phonopy_with_dft_forces(name):
    ref = _reference(name)
    # VASP-4 POSCARs (species on the comment line): phonopy's reader knows the convention
    structure = get_pmg_structure(read_vasp(DATA / f"{name}__POSCAR-unitcell"))
    phonon = make_phonopy(structure, ref.supercell_matrix, ref.primitive_matrix)
    supercells = displaced_supercells(phonon, distance=0.01)

    # our displacements are the ones `phonopy -d` wrote for the DFT runs
    ours, theirs = phonon.dataset["first_atoms"], ref.dataset["first_atoms"]
    assert len(supercells) == len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a["number"] == b["number"]
        np.testing.assert_allclose(a["displacement"], b["displacement"], atol=1e-10)

    props = harmonic_properties(phonon, _dft_forces(name, len(ours)), mesh=MESH, temperatures=TEMPERATURES)
    np.testing.assert_allclose(props.force_constants, ref.force_constants, atol=1e-10)

    # band path frequencies (seekpath path through phonopy) equal phonopy's at the same q-points
    ref.run_qpoints(np.concatenate(props.band_qpoints))
    np.testing.assert_allclose(
        np.concatenate(props.band_frequencies), ref.get_qpoints_dict()["frequencies"], atol=1e-6
    )
    ref.run_mesh(MESH, is_gamma_center=True)
    np.testing.assert_allclose(props.mesh_frequencies, ref.mesh.frequencies, atol=1e-6)
    ref.run_thermal_properties(temperatures=TEMPERATURES, exclude_gamma_acoustic=True)
    tp = ref.get_thermal_properties_dict()
    np.testing.assert_allclose(props.free_energy, tp["free_energy"], atol=1e-8)
    np.testing.assert_allclose(props.entropy, tp["entropy"], atol=1e-8)
    np.testing.assert_allclose(props.heat_capacity, tp["heat_capacity"], atol=1e-8)

    # physics: three acoustic modes vanish at Γ, a dynamically stable DFT crystal is not flagged,
    # the DOS integrates to 3 × atoms per primitive cell, and C_v → 3 N k_B at high T
    n_prim = len(phonon.primitive)
    gamma = np.sort(props.mesh_frequencies[0])
    np.testing.assert_allclose(gamma[:3], 0.0, atol=1e-5)
    assert gamma[3] > 1.0
    assert not props.imaginary["any"]
    area = np.trapezoid(props.dos, props.dos_frequencies)
    assert area == pytest.approx(3 * n_prim, rel=0.02)
    dulong_petit = 3 * n_prim * 8.314462618  # J/(K·mol)
    assert props.heat_capacity[-1] == pytest.approx(dulong_petit, rel=0.03)
    assert len(props.band_labels) >= 2


def test_unsymmetrized_dft_force_constants_break_the_acoustic_sum_rule():
    """Why we symmetrize: raw NaCl DFT force constants give Γ acoustic modes below −0.01 THz."""
    ref = phonopy.load(DATA / "NaCl__phonopy_disp.yaml", produce_fc=False, is_nac=False, log_level=0)
    phonon = make_phonopy(get_pmg_structure(ref.unitcell), ref.supercell_matrix, ref.primitive_matrix)
    displaced_supercells(phonon, 0.01)
    props = harmonic_properties(phonon, _dft_forces("NaCl", 2), mesh=MESH, symmetrize_fc=False)
    assert props.imaginary["gamma_acoustic"] and props.imaginary["any"]
    assert not props.imaginary["gamma_optical"] and not props.imaginary["off_gamma"]
