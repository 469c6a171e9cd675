"""Golden κ check, no MLIP: our phono3py path fed with phono3py's Si-PBEsol VASP forces.

phono3py's own test suite (``test_kappa_RTA_si``) gets κ = 107.69 W/(m·K) at 300 K on a
9×9×9 mesh from these forces, without isotope scattering. Data: tests/data/phonons/README.md.

The coherence term is checked against phono3py 3.30, the Wigner code of the κ_SRME references,
fed with the same force constants (``python benchmarks/kappa_wigner_codes.py --golden-si``).
"""

from __future__ import annotations

import lzma
from pathlib import Path

import numpy as np
import phono3py
import pytest
from pymatgen.io.phonopy import get_pmg_structure

from mlipflows.phonons import wigner
from mlipflows.phonons.kappa import conductivity, kappa_supercells, make_phono3py, mode_kappa_total

DATA = Path(__file__).parents[1] / "data" / "phonons"
KAPPA_SI_PBESOL_9 = 107.69  # W/(m·K), phono3py test suite
# κ_C (W/(m·K), 300 K, 9³, no isotopes) of phono3py 3.30's transport_type="MS-SMM19" from these
# force constants as they are, and with fc3 ×8 (linewidths ×64: coherences are 16 % of κ)
KAPPA_C_PHONO3PY_330 = {1.0: 0.16662, 8.0: 0.32461}


@pytest.fixture
def reference(tmp_path_factory):
    """phono3py's own route: its displacement yaml and FORCES_FC3 (a fresh object per test)."""
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
    assert result.kappa_c[0, :3].mean() == pytest.approx(KAPPA_C_PHONO3PY_330[1.0], rel=2e-3)
    # the per-mode decomposition sums back to the totals (Matbench's consistency check)
    summed = result.mode_kappa_tot.sum(axis=(1, 2)) / result.weights.sum()
    np.testing.assert_allclose(summed, result.kappa_tot, rtol=1e-6, atol=1e-8)
    assert result.kappa_tot_avg[0] == pytest.approx(kappa_p[:3].mean() + result.kappa_c[0, :3].mean())
    assert not result.imaginary["any"]
    assert result.weights.sum() == 9**3


def test_coherences_match_phono3py_3_where_they_matter(reference):
    """fc3 ×8: phono3py 4's own ``smm19`` is 14 % high there, SMM19's velocity operator is not."""
    reference.produce_fc3()
    reference.symmetrize_fc3(options="level=1")
    reference.symmetrize_fc2(options="level=1")
    reference.fc3 = reference.fc3 * 8.0
    reference.mesh_numbers = [9, 9, 9]
    reference.init_phph_interaction(symmetrize_fc3q=False)
    kappa_c = {}
    for code in (wigner.register(), "smm19"):
        reference.run_thermal_conductivity(
            temperatures=[300.0], is_isotope=False, boundary_mfp=1e6, transport_type=code
        )
        tc = reference.thermal_conductivity
        populations, coherence, _, kappa_c_tot = wigner.parts(tc)
        kappa_c[code] = kappa_c_tot[0, :3].mean()
        # the split only moves degenerate pairs between κ_P and κ_C
        matrix = np.asarray(tc.mode_kappa_matrix)[0]
        np.testing.assert_allclose(populations.sum() + coherence.sum(), matrix.sum(), rtol=1e-12)
    assert kappa_c[wigner.VARIANT] == pytest.approx(KAPPA_C_PHONO3PY_330[8.0], rel=1e-3)
    assert kappa_c["smm19"] > 1.1 * KAPPA_C_PHONO3PY_330[8.0]


def test_original_heat_capacity_matrix_is_smm19_times_the_velocity_ratio():
    """Diagonal: the mode heat capacity; off-diagonal: scaled by 4ωω'/(ω+ω')² ≤ 1."""
    from phono3py.phonon.heat_capacity_matrix import mode_cv_matrix_smm19

    freqs = np.array([0.0, 0.01, 0.01, 0.03])  # eV; a zero (Γ acoustic) and a degenerate pair
    temps = np.array([300.0])
    ours, theirs = wigner.original_cv_matrix(temps, freqs)[0], mode_cv_matrix_smm19(temps, freqs)[0]
    np.testing.assert_allclose(np.diag(ours)[1:], np.diag(theirs)[1:])
    np.testing.assert_allclose(ours[1, 3], theirs[1, 3] * 4 * 0.01 * 0.03 / 0.04**2)
    assert ours[1, 2] == pytest.approx(theirs[1, 2])  # degenerate: the ratio is 1
    assert np.all(ours[0] == 0.0) and np.all(np.isfinite(ours))


def test_degenerate_pairs_are_populations_shared_by_both_bands():
    """phono3py 3.30's split: |Δf| < 1e-4 THz is a population, half to each band of the pair."""
    freqs = np.array([[1.0, 1.0 + 5e-5, 2.0]])  # one q-point; bands 0 and 1 degenerate
    matrix = np.zeros((1, 1, 3, 3, 6))
    matrix[0, 0, :, :, 0] = [[1.0, 0.2, 0.3], [0.2, 2.0, 0.4], [0.3, 0.4, 3.0]]
    populations, coherence = wigner.split_populations(matrix, freqs)
    np.testing.assert_allclose(populations[0, 0, :, 0], [1.2, 2.2, 3.0])
    assert coherence[0, 0, 0, 1, 0] == coherence[0, 0, 1, 0, 0] == 0.0
    np.testing.assert_allclose(coherence[0, 0, :, :, 0], [[0, 0, 0.3], [0, 0, 0.4], [0.3, 0.4, 0]])


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
