"""Task documents: one per structure per calculation. These field names are the query API.

Field names follow atomate2's ``ForceFieldTaskDocument`` where the meaning is the same
(``structure``, ``energy``, ``forces``, ``stress``, ``is_force_converged`` ≈ ``converged``).
Units: energies eV, forces eV/Å, stress GPa (ASE sign: negative under compression),
volumes Å³, times s.
"""

from __future__ import annotations

import uuid as _uuid
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field
from pymatgen.core import Structure

from mlipflows.engine.results import SystemResult
from mlipflows.potentials.base import EV_PER_A3_TO_GPA, ModelCard

TaskType = Literal["static", "relax"]

# Fields users filter and sort on; stores index them.
INDEXED_FIELDS = (
    "uuid",
    "structure_id",
    "campaign",
    "tags",
    "task_type",
    "model.name",
    "formula_reduced",
    "chemsys",
    "elements",
    "state",
    "energy_per_atom",
)


class ModelInfo(BaseModel):
    """Which weights produced a result."""

    name: str
    version: str
    checksum: str
    source: str

    @classmethod
    def from_card(cls, card: ModelCard) -> ModelInfo:
        return cls(name=card.name, version=card.version, checksum=card.checksum, source=card.source)


class Timings(BaseModel):
    """Seconds spent, from the structure entering the batch to leaving it."""

    wall_s: float = 0.0


class BaseDocument(BaseModel):
    """Identity, provenance and outcome fields every result document carries.

    Subclasses (relax/static here; phonon, κ, elastic, ... elsewhere) add their result fields
    and set ``task_type``. All of them go to the same ``results`` collection, so a structure's
    results join on ``structure_id`` (+ ``campaign`` and ``model.name``).
    """

    uuid: str = Field(default_factory=lambda: str(_uuid.uuid4()))
    structure_id: str = Field(description="user-facing id (file name, candidate id, ...)")
    campaign: str | None = None
    tags: list[str] = Field(default_factory=list)
    task_type: str
    formula_pretty: str
    formula_reduced: str
    composition: dict[str, float]
    chemsys: str
    elements: list[str]
    nsites: int
    model: ModelInfo
    device: str
    settings: dict[str, Any] = Field(default_factory=dict)
    state: Literal["successful", "failed"]
    error: str | None = None
    timings: Timings = Field(default_factory=Timings)
    structure: dict[str, Any] = Field(description="final structure, pymatgen dict")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def get_structure(self) -> Structure:
        return Structure.from_dict(self.structure)


def identity_fields(structure: Structure) -> dict[str, Any]:
    """Formula, composition, chemsys, elements and size of ``structure`` for a document."""
    comp = structure.composition
    return {
        "formula_pretty": comp.reduced_formula,
        "formula_reduced": comp.reduced_formula,
        "composition": {el.symbol: amt for el, amt in comp.element_composition.items()},
        "chemsys": comp.chemical_system,
        "elements": sorted(el.symbol for el in comp.elements),
        "nsites": len(structure),
    }


class TaskDocument(BaseDocument):
    """The result of one relaxation or static calculation on one structure."""

    task_type: TaskType
    converged: bool = False
    n_steps: int = 0
    energy: float | None = Field(None, description="total energy, eV")
    energy_per_atom: float | None = Field(None, description="eV/atom")
    forces: list[list[float]] | None = Field(None, description="eV/Å, one row per site")
    max_force: float | None = Field(None, description="largest |F| on any atom, eV/Å")
    stress: list[list[float]] | None = Field(None, description="3×3 Cauchy stress, GPa")
    pressure: float | None = Field(None, description="−tr(σ)/3, GPa (positive = compressed)")
    volume: float | None = Field(None, description="final cell volume, Å³")
    density: float | None = Field(None, description="g/cm³")
    input_structure: dict[str, Any] | None = None
    trajectory: list[float] | None = Field(None, description="energy after each step, eV")

    @classmethod
    def from_result(
        cls,
        result: SystemResult,
        structure_id: str,
        task_type: TaskType,
        card: ModelCard,
        device: str,
        settings: dict[str, Any],
        input_structure: Structure,
        campaign: str | None = None,
        tags: list[str] | None = None,
    ) -> TaskDocument:
        s = result.structure
        ok = result.error is None
        stress_gpa = None
        pressure = None
        if ok and result.stress is not None:
            stress = np.asarray(result.stress) * EV_PER_A3_TO_GPA
            stress_gpa = stress.tolist()
            pressure = float(-np.trace(stress) / 3.0)
        return cls(
            structure_id=structure_id,
            campaign=campaign,
            tags=tags or [],
            task_type=task_type,
            **identity_fields(s),
            model=ModelInfo.from_card(card),
            device=device,
            settings=settings,
            state="successful" if ok else "failed",
            error=result.error,
            converged=bool(result.converged) if ok else False,
            n_steps=result.n_steps,
            timings=Timings(wall_s=result.wall_time),
            energy=result.energy if ok else None,
            energy_per_atom=result.energy / len(s) if ok and result.energy is not None else None,
            forces=result.forces.tolist() if ok and result.forces is not None else None,
            max_force=result.max_force if ok else None,
            stress=stress_gpa,
            pressure=pressure,
            volume=float(s.volume),
            density=float(s.density),
            structure=s.as_dict(),
            input_structure=input_structure.as_dict() if task_type == "relax" else None,
            trajectory=result.trajectory or None,
        )


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
