"""Golden κ check, no MLIP: our phono3py path fed with phono3py's Si-PBEsol VASP forces.

phono3py's own test suite (``test_kappa_RTA_si``) gets κ = 107.69 W/(m·K) at 300 K on a
9×9×9 mesh from these forces, without isotope scattering. Data: tests/data/phonons/README.md.
"""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import phono3py
import pytest
from pymatgen.io.phonopy import get_pmg_structure

from mlipflows.phonons.kappa import conductivity, kappa_supercells, make_phono3py, mode_kappa_total

DATA = Path(__file__).parents[1] / "data" / "phonons"
KAPPA_SI_PBESOL_9 = 107.69  # W/(m·K), phono3py test suite


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """phono3py's own route: its displacement yaml and FORCES_FC3."""
    tmp = tmp_path_factory.mktemp("si")
    for name in ("Si-PBEsol__FORCES_FC3", "Si-PBEsol__phono3py.yaml"):
        (tmp / name).write_bytes(lzma.decompress((DATA / f"{name}.xz").read_bytes()))
    return phono3py.load(
        tmp / "Si-PBEsol__phono3py.yaml",
        forces_fc3_filename=tmp / "Si-PBEsol__FORCES_FC3",
        produce_fc=False,
        log_level=0,
    )


def test_si_kappa_reproduces_phono3py_with_dft_forces(reference):
    ph3 = make_phono3py(
        get_pmg_structure(reference.unitcell), reference.supercell_matrix, primitive_matrix="auto"
    )
    fc3_cells, fc2_cells = kappa_supercells(ph3, distance=0.03)  # the amplitude of the DFT runs
    assert fc2_cells == []
    ours, theirs = ph3.dataset["first_atoms"], reference.dataset["first_atoms"]
    assert len(fc3_cells) == len(reference.forces) == 111
    for a, b in zip(ours, theirs, strict=True):
        assert a["number"] == b["number"]
        np.testing.assert_allclose(a["displacement"], b["displacement"], atol=1e-10)
        assert [s["number"] for s in a["second_atoms"]] == [s["number"] for s in b["second_atoms"]]

    result = conductivity(ph3, reference.forces, mesh=[9, 9, 9], transport="wigner", isotope=False)

    kappa_p = result.kappa_p_rta[0]
    np.testing.assert_allclose(kappa_p[:3], KAPPA_SI_PBESOL_9, rtol=0.01)
    np.testing.assert_allclose(kappa_p[3:], 0.0, atol=1e-8)  # cubic: isotropic
    # coherences matter little in a simple high-κ crystal (Simoncelli et al.: < 1 % in Si)
    assert 0.0 < result.kappa_c[0, 0] < 0.01 * kappa_p[0]
    # the per-mode decomposition sums back to the totals (Matbench's consistency check)
    summed = result.mode_kappa_tot.sum(axis=(1, 2)) / result.weights.sum()
    np.testing.assert_allclose(summed, result.kappa_tot, rtol=1e-6, atol=1e-8)
    assert result.kappa_tot_avg[0] == pytest.approx(kappa_p[:3].mean() + result.kappa_c[0, :3].mean())
    assert not result.imaginary["any"]
    assert result.weights.sum() == 9**3


def test_mode_kappa_total_splits_coherences_by_heat_capacity():
    """Two bands, one q-point: κ_C(0,1) = κ_C(1,0) = 1 shared as 2·C_b/(C_b + C_b')."""
    kp = np.array([[[[1.0] * 6, [2.0] * 6]]])  # (T=1, q=1, band=2, 6)
    kc = np.zeros((1, 1, 2, 2, 6))
    kc[0, 0, 0, 1] = kc[0, 0, 1, 0] = 1.0
    cv = np.array([[[3.0, 1.0]]])
    total = mode_kappa_total(kp, kc, cv)
    # band 1 receives 2·κ_C(0,1)·C_0/(C_0+C_1) = 1.5, band 0 receives 2·κ_C(1,0)·C_1/(C_1+C_0) = 0.5
    np.testing.assert_allclose(total[0, 0, :, 0], [1.0 + 0.5, 2.0 + 1.5])
    assert total[..., 0].sum() == pytest.approx(kp[..., 0].sum() + kc[..., 0].sum())
