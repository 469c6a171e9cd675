"""Phonons of Si with a pretrained model (slow): the pipeline against a frozen-phonon check."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import bulk
from ase.units import _amu, _e
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.makers.base import ChunkSettings
from mlipflows.makers.phonons import PhononMaker, phonon_relax_settings
from mlipflows.potentials.ase_calculator import MlipflowsCalculator

pytestmark = pytest.mark.slow


def _frozen_phonon_gamma_optical(structure: Structure, model: str) -> float:
    """Γ optical frequency (THz) of diamond from one central finite difference in the primitive cell.

    Moving atom 0 moves its whole sublattice against the other one: ω² = 2k/m (equal masses).
    """
    atoms = AseAtomsAdaptor.get_atoms(structure.get_primitive_structure())
    atoms.calc = MlipflowsCalculator(model)
    d, f = 0.01, []
    for sign in (1, -1):
        moved = atoms.copy()
        moved.calc = atoms.calc
        moved.positions[0, 0] += sign * d
        f.append(moved.get_forces()[0, 0])
    k = -(f[0] - f[1]) / (2 * d)  # eV/Å²
    omega = np.sqrt(2 * k * _e / (atoms.get_masses()[0] * _amu)) * 1e10  # rad/s
    return float(omega / (2 * np.pi) / 1e12)


def test_si_phonons_with_sevennet():
    si = AseAtomsAdaptor.get_structure(bulk("Si", "diamond", 5.45))
    maker = PhononMaker(
        chunk=ChunkSettings(model="sevennet-0"),
        relax=phonon_relax_settings(fmax=1e-3, max_steps=200),  # float32 model: 1e-4 is at its noise floor
        supercell_matrix=[3, 3, 3],
        mesh=[8, 8, 8],
    )
    doc = maker.make.original(maker, [si], ["si"])[0]
    assert doc.state == "successful", doc.error
    assert doc.setup.spacegroup_before == doc.setup.spacegroup_after == 227
    assert doc.has_imaginary_modes is False
    # Γ optical: phonopy through the batched engine = a direct frozen phonon with the same model
    # (SevenNet-0 gives ≈ 12.6 THz, softer than PBE's 15.1-15.3 THz: the model, not the pipeline)
    gamma_optical = float(np.max(doc.band_structure["frequencies"][0][0]))
    expected = _frozen_phonon_gamma_optical(doc.get_structure(), "sevennet-0")
    assert gamma_optical == pytest.approx(expected, rel=0.01)
    # Dulong-Petit per primitive cell (2 atoms): C_v(1000 K) within 5 % of 6R
    assert doc.heat_capacity[-1] == pytest.approx(6 * 8.314462618, rel=0.05)
