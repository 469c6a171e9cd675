"""Harmonic phonon (phonopy) and lattice thermal conductivity (phono3py) results.

The documents keep summaries; force constants, band structures, DOS and per-mode κ are
routed to the jobflow ``data`` store (their fields are named in the Makers' ``@job(data=...)``).
Units: frequencies THz, force constants eV/Å², free energy kJ/mol and entropy / heat capacity
J/(K·mol) per primitive cell (phonopy's convention), κ W/(m·K), temperatures K, displacements Å.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from mlipflows.schemas.base import BaseDocument

# Routed to the data store by the Makers and left out of the flat results collection.
PHONON_DATA_FIELDS = ("force_constants", "band_structure", "dos")
KAPPA_DATA_FIELDS = ("fc2", "mode_kappa", "mode_frequencies", "mode_weights")


class RelaxSummary(BaseModel):
    """The symmetry-preserving relaxation that preceded the phonon calculation."""

    converged: bool
    n_steps: int
    fmax: float = Field(description="requested threshold, eV/Å")
    max_force: float | None = Field(None, description="final largest |F|, eV/Å")
    energy_per_atom: float | None = Field(None, description="eV/atom")
    two_stage: bool = Field(False, description="a second, unconstrained relaxation followed (k_SRME)")
    stage2_spacegroup: int | None = Field(None, description="space group after the unconstrained stage")
    redirected_to_symmetric: bool = Field(
        False, description="the unconstrained stage broke the symmetry; the symmetric result was kept"
    )


class PhononSetup(BaseModel):
    """How the supercells were built and displaced (shared by phonon and κ documents)."""

    supercell_matrix: list[list[int]] | None = None
    primitive_matrix: list[list[float]] | None = None
    displacement: float = Field(0.01, description="Å")
    n_displacements: int = 0
    n_supercell_atoms: int = 0
    spacegroup_before: int | None = None
    spacegroup_after: int | None = None
    symmetry_changed: bool = False
    spacegroup_input_loose: int | None = Field(
        None, description="a P1/P-1 input's space group at a loose tolerance (what it was meant to be)"
    )
    relax: RelaxSummary | None = None


class PhononDocument(BaseDocument):
    """Harmonic phonons of one structure."""

    DATA_FIELDS: ClassVar[tuple[str, ...]] = PHONON_DATA_FIELDS

    task_type: Literal["phonon"] = "phonon"
    setup: PhononSetup = Field(default_factory=PhononSetup)
    has_imaginary_modes: bool | None = Field(
        None,
        description="Matbench Discovery rule: Γ optical < 0, Γ acoustic < −0.01 THz, or any mode < 0 off Γ",
    )
    imaginary_flags: dict[str, bool] = Field(default_factory=dict)
    min_frequency: float | None = Field(None, description="lowest frequency on mesh and band path, THz")
    max_frequency: float | None = Field(None, description="highest frequency, THz")
    mesh: list[int] | None = None
    band_labels: list[str] = Field(default_factory=list)
    temperatures: list[float] | None = Field(None, description="K")
    free_energy: list[float] | None = Field(None, description="Helmholtz F, kJ/mol per primitive cell")
    entropy: list[float] | None = Field(None, description="J/(K·mol) per primitive cell")
    heat_capacity: list[float] | None = Field(None, description="C_v, J/(K·mol) per primitive cell")
    heat_capacity_per_atom: list[float] | None = Field(
        None,
        description="C_v, J/(K·mol) per mol of atoms (3R = 24.9 at high T): comparable across structures",
    )
    n_primitive_atoms: int | None = Field(None, description="atoms in phonopy's primitive cell")
    warnings: list[str] = Field(default_factory=list)
    force_constants: list | None = Field(None, description="eV/Å² (data store)")
    band_structure: dict[str, Any] | None = Field(None, description="q, distances, THz (data store)")
    dos: dict[str, Any] | None = Field(None, description="frequency THz, states/THz (data store)")


class KappaDocument(BaseDocument):
    """Lattice thermal conductivity of one structure (phono3py, RTA and Wigner)."""

    DATA_FIELDS: ClassVar[tuple[str, ...]] = KAPPA_DATA_FIELDS

    task_type: Literal["kappa"] = "kappa"
    setup: PhononSetup = Field(default_factory=PhononSetup)
    fc3_supercell_matrix: list[list[int]] | None = None
    n_fc3_displacements: int = 0
    mesh: list[int] | None = None
    temperatures: list[float] | None = Field(None, description="K")
    isotope: bool = True
    conductivity_type: str = Field("wigner", description="phono3py conductivity_type")
    kappa_p_rta: list[list[float]] | None = Field(
        None, description="particle (Peierls) κ per T, Voigt xx,yy,zz,yz,xz,xy, W/(m·K)"
    )
    kappa_c: list[list[float]] | None = Field(None, description="Wigner coherence κ per T, Voigt, W/(m·K)")
    kappa_tot_rta: list[list[float]] | None = Field(None, description="κ_P + κ_C per T, Voigt, W/(m·K)")
    kappa_tot_avg: list[float] | None = Field(None, description="mean of κ_TOT xx,yy,zz per T, W/(m·K)")
    has_imaginary_modes: bool | None = None
    imaginary_flags: dict[str, bool] = Field(default_factory=dict)
    kappa_skipped: str | None = Field(
        None, description="why fc3 and κ were not computed (imaginary modes, broken symmetry)"
    )
    warnings: list[str] = Field(default_factory=list)
    fc2: list | None = Field(None, description="eV/Å² (data store)")
    mode_kappa: list | None = Field(None, description="per T, q, band: κ_P + κ_C Voigt, W/(m·K) (data store)")
    mode_frequencies: list | None = Field(None, description="(n_irr_q, n_bands), THz (data store)")
    mode_weights: list | None = Field(None, description="q-point weights (data store)")
