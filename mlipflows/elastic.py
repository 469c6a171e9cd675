"""Second-order elastic constants from stress–strain data (pymatgen does the tensor algebra).

Protocol (the atomate2/Materials Project one, de Jong et al., Sci. Data 2, 150009 (2015)):
independent Green–Lagrange strains of ±0.5 % and ±1 % along each of the six Voigt components
(:class:`pymatgen.analysis.elasticity.DeformedStructureSet`), atoms relaxed at fixed cell, the
Cauchy stress turned into the second Piola–Kirchhoff stress, and C_ij = ∂S_i/∂η_j fitted line
by line (:meth:`ElasticTensor.from_independent_strains`, the equilibrium stress included as the
zero-strain point), then averaged over the crystal's point group and rotated to the IEEE frame.

Sign: engine stresses are ``σ = (1/V) ∂E/∂ε`` (ASE), which *is* the physical stress (positive in
tension), the sign pymatgen's fit expects; only the unit changes (eV/Å³ → GPa).

Born stability: a crystal is mechanically stable when the 6×6 Voigt matrix is positive definite
(Mouhat & Coudert, Phys. Rev. B 90, 224104 (2014)), i.e. all its eigenvalues are positive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pymatgen.analysis.elasticity import DeformedStructureSet, ElasticTensor, Strain, Stress
from pymatgen.core import Structure

from mlipflows.potentials.base import EV_PER_A3_TO_GPA

DEFAULT_STRAINS = (-0.01, -0.005, 0.005, 0.01)
MODULUS_LIMIT_GPA = 1000.0  # no known material has K or G above ~600 GPa (diamond: K 443, G 535)


@dataclass
class StrainSet:
    """The deformed cells of one structure and their Green–Lagrange strains."""

    deformations: list[np.ndarray]
    strains: list[np.ndarray]
    structures: list[Structure]


def strain_set(structure: Structure, magnitudes: Sequence[float] = DEFAULT_STRAINS) -> StrainSet:
    """Independent normal and shear strains (each tensor component, ``magnitudes``) of ``structure``.

    Shear magnitudes are tensor components η_ij (the Voigt engineering strain is 2η_ij).
    """
    dss = DeformedStructureSet(
        structure, norm_strains=tuple(magnitudes), shear_strains=tuple(magnitudes), symmetry=False
    )
    deformations = [np.asarray(d) for d in dss.deformations]
    strains = [np.asarray(d.green_lagrange_strain) for d in dss.deformations]
    return StrainSet(deformations, strains, list(dss.deformed_structures))


@dataclass
class ElasticFit:
    """A fitted, symmetrized elastic tensor and what can be derived from it. Moduli in GPa.

    Attributes:
        tensor: symmetrized 6×6 Voigt tensor in the IEEE frame, GPa.
        raw_tensor: the fit before symmetrization, in the structure's Cartesian frame, GPa.
        residual_gpa: RMS difference between fitted and computed stresses over all used strains.
        residual_fraction: ``residual_gpa`` over the RMS stress change the strains caused.
        n_strains_used: strained cells that entered the fit.
        warnings: physically suspicious results, in words.
    """

    tensor: np.ndarray
    raw_tensor: np.ndarray
    k_voigt: float
    k_reuss: float
    k_vrh: float
    g_voigt: float
    g_reuss: float
    g_vrh: float
    youngs_modulus: float
    poisson_ratio: float
    universal_anisotropy: float
    eigenvalues: list[float]
    born_stable: bool
    residual_gpa: float
    residual_fraction: float
    n_strains_used: int
    warnings: list[str] = field(default_factory=list)


def to_gpa_stress(stress_ev_a3: np.ndarray) -> np.ndarray:
    """Engine stress (eV/Å³, ASE sign = physical sign) → physical stress in GPa."""
    return np.asarray(stress_ev_a3, dtype=float) * EV_PER_A3_TO_GPA


def fit_elastic_tensor(
    structure: Structure,
    strains: Sequence[np.ndarray],
    deformations: Sequence[np.ndarray],
    stresses_gpa: Sequence[np.ndarray],
    eq_stress_gpa: np.ndarray,
    symprec: float = 1e-3,
    max_residual_fraction: float = 0.1,
) -> ElasticFit:
    """Fit C_ij to the strained cells that succeeded; raises ``ValueError`` if a strain mode is missing.

    Args:
        structure: the relaxed (unstrained) structure, for symmetrization and the IEEE frame.
        strains: Green–Lagrange strain of each strained cell (3×3).
        deformations: deformation gradient of each strained cell (3×3).
        stresses_gpa: physical Cauchy stress of each relaxed strained cell, GPa.
        eq_stress_gpa: stress of the unstrained relaxed cell, GPa (the fit's zero-strain point).
        symprec: spglib tolerance for the crystal's point group, Å.
        max_residual_fraction: warn when the fit residual exceeds this share of the stress signal.
    """
    pk2 = [Stress(s).piola_kirchoff_2(d) for s, d in zip(stresses_gpa, deformations, strict=True)]
    strain_objs = [Strain(e) for e in strains]
    eq = Stress(np.asarray(eq_stress_gpa, dtype=float))
    raw = ElasticTensor.from_independent_strains(strain_objs, pk2, eq_stress=eq, tol=1e-8)

    # residual of the linear model S = S0 + C η over every used strain (Voigt components)
    c = np.asarray(raw.voigt)
    observed = np.array([np.asarray(p.voigt) - eq.voigt for p in pk2])
    predicted = np.array([c @ np.asarray(e.voigt) for e in strain_objs])
    residual = float(np.sqrt(np.mean((observed - predicted) ** 2)))
    signal = float(np.sqrt(np.mean(observed**2))) or 1.0

    ieee = symmetrized_ieee(raw, structure, symprec)
    voigt = np.asarray(ieee.voigt)
    voigt = 0.5 * (voigt + voigt.T)
    et = ElasticTensor.from_voigt(voigt)
    eig = np.linalg.eigvalsh(voigt)
    k_vrh, g_vrh = float(et.k_vrh), float(et.g_vrh)
    with np.errstate(divide="ignore", invalid="ignore"):
        # pymatgen's y_mod is in Pa for a tensor in GPa (it multiplies by 1e9)
        youngs, poisson, anisotropy = et.y_mod / 1e9, et.homogeneous_poisson, et.universal_anisotropy
    fit = ElasticFit(
        tensor=voigt,
        raw_tensor=c,
        k_voigt=float(et.k_voigt),
        k_reuss=float(et.k_reuss),
        k_vrh=k_vrh,
        g_voigt=float(et.g_voigt),
        g_reuss=float(et.g_reuss),
        g_vrh=g_vrh,
        youngs_modulus=float(youngs),
        poisson_ratio=float(poisson),
        universal_anisotropy=float(anisotropy),
        eigenvalues=[float(x) for x in eig],
        born_stable=bool(eig.min() > 0),
        residual_gpa=residual,
        residual_fraction=residual / signal,
        n_strains_used=len(strain_objs),
    )
    fit.warnings = fit_warnings(fit, max_residual_fraction)
    return fit


def symmetrized_ieee(tensor: ElasticTensor, structure: Structure, symprec: float) -> ElasticTensor:
    """``tensor`` averaged over the point group of ``structure`` and rotated to the IEEE frame.

    The relaxed lattice is symmetric only to the relaxation's tolerance, so the point-group
    average in its frame leaves ~0.1 % asymmetry after the rotation; when the spglib-refined
    conventional cell already sits in the IEEE frame (cubic, tetragonal, hexagonal, orthorhombic
    as pymatgen sets them up) the average is repeated there, with exact operations.
    """
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    ieee = tensor.convert_to_ieee(structure, initial_fit=True)
    conv = SpacegroupAnalyzer(structure, symprec=symprec).get_conventional_standard_structure()
    if np.allclose(ieee.get_ieee_rotation(conv), np.eye(3), atol=1e-6):
        ieee = ieee.fit_to_structure(conv, symprec=symprec)
    return ElasticTensor(ieee)


def fit_warnings(fit: ElasticFit, max_residual_fraction: float) -> list[str]:
    """Reasons to distrust a fit: not positive definite, implausible moduli, a poor linear fit."""
    out = []
    if not fit.born_stable:
        out.append(
            f"elastic tensor is not positive definite (smallest eigenvalue {min(fit.eigenvalues):.2f} GPa):"
            " mechanically unstable (Born), or the relaxation did not reach a minimum"
        )
    for name, value in (("K_VRH", fit.k_vrh), ("G_VRH", fit.g_vrh)):
        if not np.isfinite(value) or value < 0 or value > MODULUS_LIMIT_GPA:
            out.append(f"{name} = {value:.1f} GPa is outside [0, {MODULUS_LIMIT_GPA:.0f}] GPa")
    if fit.residual_fraction > max_residual_fraction:
        out.append(
            f"stress–strain fit residual {fit.residual_gpa:.3f} GPa is "
            f"{100 * fit.residual_fraction:.0f} % of the stress signal "
            f"(> {100 * max_residual_fraction:.0f} %):"
            " stresses are noisy or the response is not linear at these strains"
        )
    return out


def born_stable(voigt_gpa: np.ndarray) -> bool:
    """True when the symmetric part of a 6×6 Voigt tensor is positive definite."""
    c = np.asarray(voigt_gpa, dtype=float)
    return bool(np.linalg.eigvalsh(0.5 * (c + c.T)).min() > 0)
