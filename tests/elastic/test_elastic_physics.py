"""Elastic constants with the analytic Morse potential: sign, Cauchy relation, finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.analysis.elasticity import ElasticTensor, Strain
from pymatgen.core import Lattice, Structure

from mlipflows.elastic import fit_elastic_tensor, strain_set
from mlipflows.engine import Batch, static
from mlipflows.makers.elastic import ElasticSettings, compute_elastic
from mlipflows.potentials.base import EV_PER_A3_TO_GPA
from mlipflows.potentials.morse import MorsePotential


@pytest.fixture(scope="module")
def morse() -> MorsePotential:
    return MorsePotential()


@pytest.fixture(scope="module")
def cu_fcc(morse) -> object:
    s = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.6), ["Cu"], [[0, 0, 0]]).get_primitive_structure()
    return compute_elastic([s], morse, ElasticSettings.with_fmax(1e-4))[0]


def _energy_curvature(structure: Structure, index: tuple[int, int], pot: MorsePotential) -> float:
    """d²E/dη² / V at η = 0 (GPa) for a Green–Lagrange strain η along ``index`` (5-point fit)."""
    etas = np.linspace(-0.01, 0.01, 5)
    cells = [
        Strain.from_index_amount(index, h).get_deformation_matrix().apply_to_structure(structure)
        for h in etas
    ]
    energies = [r.energy for r in static(cells, pot)]
    return 2 * np.polyfit(etas, energies, 2)[0] / structure.volume * EV_PER_A3_TO_GPA


def test_fcc_pair_potential_is_cubic_positive_and_obeys_cauchy(cu_fcc):
    fit = cu_fcc.fit
    c = fit.tensor
    assert cu_fcc.error is None and cu_fcc.relaxed.converged
    assert c[0, 0] > 0 and c[3, 3] > 0  # a sign error would make the stiff lattice negative
    # cubic: C11 = C22 = C33, C12 = C13 = C23, C44 = C55 = C66, no couplings
    assert np.allclose(np.diag(c)[:3], c[0, 0], rtol=1e-6) and np.allclose(np.diag(c)[3:], c[3, 3], rtol=1e-6)
    assert abs(c[0, 3]) < 1e-6 and abs(c[0, 1] - c[1, 2]) < 1e-6
    # central pairs, every atom an inversion centre, zero stress → Cauchy relation C12 = C44
    assert c[0, 1] == pytest.approx(c[3, 3], rel=0.01)
    assert fit.born_stable and fit.warnings == []
    assert fit.n_strains_used == 24 and cu_fcc.failed == []


def test_fit_matches_energy_finite_differences(cu_fcc, morse):
    """C_ij from stresses must equal the curvature of the energy (same model, no stresses used)."""
    relaxed = cu_fcc.relaxed.structure
    # IEEE frame of the cubic crystal = conventional cubic axes; use the conventional cell for FD
    conv = Structure.from_spacegroup(
        "Fm-3m", Lattice.cubic(relaxed.volume ** (1 / 3) * 4 ** (1 / 3)), ["Cu"], [[0, 0, 0]]
    )
    c = cu_fcc.fit.tensor
    assert _energy_curvature(conv, (0, 0), morse) == pytest.approx(c[0, 0], rel=0.01)
    # shear η_yz: E/V = ½ C44 (2η)² → curvature = 4 C44 (fcc: no internal relaxation)
    assert _energy_curvature(conv, (1, 2), morse) / 4 == pytest.approx(c[3, 3], rel=0.01)
    # bulk modulus from a uniform dilation, E/V = (9/2) K ε² for ε the linear strain
    eps = np.linspace(-0.01, 0.01, 5)
    cells = []
    for e in eps:
        t = conv.copy()
        t.apply_strain(e)
        cells.append(t)
    curv = 2 * np.polyfit(eps, [r.energy for r in static(cells, morse)], 2)[0]
    assert curv / (9 * conv.volume) * EV_PER_A3_TO_GPA == pytest.approx(cu_fcc.fit.k_vrh, rel=0.01)


def test_engine_stress_has_the_physical_sign(morse):
    """Stretched → positive (tensile) stress, compressed → negative: the sign pymatgen's fit expects."""
    # this Morse relaxes fcc Cu to a ≈ 3.46 Å (attraction from farther shells pulls inside r0 = 2.64 Å)
    cells = [Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Cu"], [[0, 0, 0]]) for a in (3.3, 3.6)]
    out = morse.evaluate(Batch.from_structures(cells))
    assert out.stress is not None
    assert torch.all(torch.diagonal(out.stress[0]) < 0) and torch.all(torch.diagonal(out.stress[1]) > 0)


def test_fit_recovers_a_known_tensor_and_warns_when_unstable():
    """Round trip: exact linear PK2 stresses of a known C (as Cauchy stresses) → the same C."""
    s = Structure(Lattice.hexagonal(3.0, 5.0), ["Mg", "Mg"], [[1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    hexagonal = np.array(
        [
            [60, 25, 20, 0, 0, 0],
            [25, 60, 20, 0, 0, 0],
            [20, 20, 65, 0, 0, 0],
            [0, 0, 0, 18, 0, 0],
            [0, 0, 0, 0, 18, 0],
            [0, 0, 0, 0, 0, 17.5],
        ],
        dtype=float,
    )

    def fit(voigt: np.ndarray) -> object:
        ss = strain_set(s)
        c = ElasticTensor.from_voigt(voigt)
        cauchy = []
        for eta, f in zip(ss.strains, ss.deformations, strict=True):
            pk2 = np.asarray(c.calculate_stress(Strain(eta)))
            cauchy.append(f @ pk2 @ f.T / np.linalg.det(f))  # S = J F⁻¹ σ F⁻ᵀ inverted
        return fit_elastic_tensor(s, ss.strains, ss.deformations, cauchy, np.zeros((3, 3)))

    good = fit(hexagonal)
    assert np.allclose(good.tensor, hexagonal, atol=1e-6)
    assert good.residual_gpa < 1e-8 and good.born_stable and good.warnings == []

    unstable = hexagonal.copy()
    unstable[0, 1] = unstable[1, 0] = 70  # C12 > C11, so C66 = (C11 − C12)/2 < 0 (hexagonal)
    unstable[5, 5] = -5.0
    bad = fit(unstable)
    assert not bad.born_stable
    assert any("not positive definite" in w for w in bad.warnings)
