"""Elastic tensors: one document per structure, moduli in GPa.

Field names follow atomate2's ``ElasticDocument`` / ``DerivedProperties`` where the meaning is
the same (``k_vrh``, ``g_vrh``, ``universal_anisotropy``, ``homogeneous_poisson`` ≈
``poisson_ratio``, ``y_mod`` ≈ ``youngs_modulus`` but in GPa here).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from mlipflows.schemas.base import BaseDocument


class ElasticFittingData(BaseModel):
    """What the fit saw (kept in the data store): per strained cell, in input order."""

    deformations: list[list[list[float]]] = Field(default_factory=list, description="F, 3×3")
    strains: list[list[list[float]]] = Field(default_factory=list, description="Green–Lagrange η, 3×3")
    cauchy_stresses: list[list[list[float]] | None] = Field(
        default_factory=list, description="physical Cauchy stress, GPa (None where the cell failed)"
    )
    equilibrium_stress: list[list[float]] | None = Field(None, description="GPa")


class FailedStrain(BaseModel):
    """A strained cell that could not be used."""

    index: int = Field(description="position in the strain set")
    strain_voigt: list[float]
    reason: str


class ElasticDocument(BaseDocument):
    """The elastic tensor of one relaxed structure and the moduli derived from it."""

    DATA_FIELDS: ClassVar[tuple[str, ...]] = ("fitting_data", "input_structure")
    FLAT_EXCLUDE: ClassVar[tuple[str, ...]] = ("elastic_tensor_raw",)

    task_type: Literal["elastic"] = "elastic"
    elastic_tensor: list[list[float]] | None = Field(
        None, description="C_ij, 6×6 Voigt, GPa, symmetrized to the crystal class, IEEE frame"
    )
    elastic_tensor_raw: list[list[float]] | None = Field(
        None, description="C_ij as fitted (structure's Cartesian frame, not symmetrized), GPa"
    )
    k_voigt: float | None = Field(None, description="GPa")
    k_reuss: float | None = Field(None, description="GPa")
    k_vrh: float | None = Field(None, description="bulk modulus, Voigt–Reuss–Hill, GPa")
    g_voigt: float | None = Field(None, description="GPa")
    g_reuss: float | None = Field(None, description="GPa")
    g_vrh: float | None = Field(None, description="shear modulus, Voigt–Reuss–Hill, GPa")
    youngs_modulus: float | None = Field(None, description="9KG/(3K+G) from VRH moduli, GPa")
    poisson_ratio: float | None = Field(None, description="(3K−2G)/(6K+2G) from VRH moduli")
    universal_anisotropy: float | None = Field(None, description="A^U = 5G_V/G_R + K_V/K_R − 6")
    eigenvalues: list[float] | None = Field(None, description="eigenvalues of the Voigt C_ij, GPa")
    born_stable: bool | None = Field(None, description="C_ij positive definite (Born criterion)")
    fit_residual: float | None = Field(None, description="RMS stress misfit of the linear fit, GPa")
    fit_residual_fraction: float | None = Field(None, description="fit residual / RMS stress change")
    spacegroup: int | None = Field(None, description="space group of the relaxed structure (the tensor's)")
    n_strains_total: int = 0
    n_strains_used: int = 0
    failed_strains: list[FailedStrain] = Field(default_factory=list)
    relax_converged: bool | None = None
    relax_n_steps: int | None = None
    energy_per_atom: float | None = Field(None, description="relaxed energy, eV/atom")
    volume: float | None = Field(None, description="relaxed volume, Å³")
    density: float | None = Field(None, description="g/cm³")
    warnings: list[str] = Field(default_factory=list)
    input_structure: dict[str, Any] | None = None
    fitting_data: ElasticFittingData | None = None
