"""Convex-hull stability of relaxed candidates."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mlipflows.schemas.base import BaseDocument


class DecompositionPart(BaseModel):
    """One phase of the hull decomposition of a candidate."""

    formula: str
    fraction: float = Field(description="fraction of the candidate's atoms")
    entry_id: str | None = None


class StabilityDocument(BaseDocument):
    """Thermodynamic stability of one relaxed candidate against its convex hull."""

    task_type: Literal["stability"] = "stability"
    hull_mode: Literal["mlip", "dft"]
    energy_per_atom: float | None = Field(None, description="MLIP energy, eV/atom")
    corrected_energy_per_atom: float | None = Field(None, description="MP2020-corrected, eV/atom (dft mode)")
    formation_energy_per_atom: float | None = Field(None, description="eV/atom")
    e_above_hull: float | None = Field(None, description="eV/atom; negative = below the reference hull")
    is_stable: bool | None = None
    decomposition: list[DecompositionPart] = Field(default_factory=list)
    relax_uuid: str | None = None
    relax_converged: bool | None = None
    warnings: list[str] = Field(default_factory=list)
    # surrogate campaigns: which model's relaxation the hull used, and what the student said
    decided_by: Literal["teacher", "student"] | None = None
    student_e_above_hull: float | None = Field(None, description="the student's own hull, eV/atom")
    student_energy_per_atom: float | None = Field(None, description="eV/atom")
    # polymorph stages: the hull rebuilt with each composition's lowest polymorph
    e_above_hull_before: float | None = Field(None, description="before the polymorph search, eV/atom")
    moved: Literal["onto", "off"] | None = Field(None, description="moved onto or off the hull")
    polymorph: str | None = Field(None, description="the polymorph now representing the composition")
    polymorph_spacegroup: str | None = None
