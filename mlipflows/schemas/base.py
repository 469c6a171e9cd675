"""Identity and provenance fields every result document shares; the indexed query fields.

Field names follow atomate2's ``ForceFieldTaskDocument`` where the meaning is the same
(``structure``, ``energy``, ``forces``, ``stress``, ``is_force_converged`` ≈ ``converged``).
Units: energies eV, forces eV/Å, stress GPa (ASE sign: negative under compression),
volumes Å³, times s.
"""

from __future__ import annotations

import functools
import uuid as _uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from monty.json import MSONable
from pydantic import BaseModel, Field, model_validator
from pymatgen.core import Element, Structure
from scipy.constants import atomic_mass

from mlipflows.potentials.base import ModelCard

# Fields users filter and sort on; stores index them.
INDEXED_FIELDS = (
    "uuid",
    "structure_id",
    "campaign",
    "stage",
    "tags",
    "task_type",
    "model.name",
    "formula_reduced",
    "chemsys",
    "elements",
    "state",
    "energy_per_atom",
    "formation_energy_per_atom",
    "e_above_hull",
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

    # fields routed to the JobStore's ``data`` store (and so left out of the flat results);
    # the Makers' ``@job(data=...)`` and the flat-store exclusion both read this one list
    DATA_FIELDS: ClassVar[tuple[str, ...]] = ()
    # further fields kept in the job output but not in the flat results collection
    FLAT_EXCLUDE: ClassVar[tuple[str, ...]] = ()

    uuid: str = Field(default_factory=lambda: str(_uuid.uuid4()))
    structure_id: str = Field(description="user-facing id (file name, candidate id, ...)")
    campaign: str | None = None
    stage: str | None = Field(None, description="the campaign stage that produced it (funnels)")
    settings_digest: str | None = Field(
        None, description="digest of the stage's settings and model (with its source stage's)"
    )
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
    state: Literal["successful", "failed", "unphysical"] = Field(
        description="unphysical: a sanity check rejected the result (its data are kept; hulls, "
        "rankings, selections and metrics leave it out)"
    )
    error: str | None = Field(None, description="why it failed or is unphysical")
    timings: Timings = Field(default_factory=Timings)
    structure: dict[str, Any] = Field(description="final structure, pymatgen dict")
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @model_validator(mode="before")
    @classmethod
    def _objects_as_dicts(cls, data: Any) -> Any:
        """When a later job reads a stored document, jobflow decodes its pymatgen dicts into
        objects (Structure, …); the fields hold the dicts, so chained jobs validate."""
        return _as_dicts(data) if isinstance(data, dict) else data

    def get_structure(self) -> Structure:
        return Structure.from_dict(self.structure)

    @classmethod
    def flat_exclude(cls) -> tuple[str, ...]:
        """Fields left out of the flat ``results`` collection."""
        return (*cls.DATA_FIELDS, *cls.FLAT_EXCLUDE)


def _as_dicts(value: Any) -> Any:
    """``value`` with every MSONable object (not a pydantic model) turned back into its dict."""
    if isinstance(value, MSONable) and not isinstance(value, BaseModel):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _as_dicts(v) for k, v in value.items()}
    if isinstance(value, list) and value and not isinstance(value[0], int | float):
        return [_as_dicts(v) for v in value]  # (lists of numbers, the bulk of a document, skipped)
    return value


_AMU_PER_A3_TO_G_PER_CM3 = atomic_mass * 1e27  # kg → g (1e3) over Å³ → cm³ (1e-24)


@functools.cache
def _atomic_mass(z: int) -> float:
    return float(Element.from_Z(z).atomic_mass)


def density(structure: Structure) -> float:
    """g/cm³, as ``Structure.density`` (which costs ~0.7 ms a structure in unit arithmetic)."""
    if not structure.is_ordered:
        return float(structure.density)
    mass = sum(_atomic_mass(z) for z in structure.atomic_numbers)
    return mass * _AMU_PER_A3_TO_G_PER_CM3 / structure.volume


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
