"""Crystal-structure ranking: one document per formula per model (energies eV/atom, ΔE meV/atom)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, Field

from mlipflows.schemas.base import BaseDocument
from mlipflows.schemas.opinion import Opinion


class RankedStructure(BaseModel):
    """One distinct relaxed polymorph (duplicates merged into it)."""

    rank: int
    structure_id: str
    source: str = Field(description="prototype, random or file")
    spacegroup: str
    spacegroup_number: int
    energy_per_atom: float = Field(description="eV/atom")
    delta_e_mev_per_atom: float = Field(description="above the lowest, meV/atom")
    volume_per_atom: float = Field(description="Å³/atom")
    density: float = Field(description="g/cm³")
    nsites: int
    converged: bool
    unphysical: str | None = Field(
        None, description="the sanity check it failed (ranked only when asked for explicitly)"
    )
    n_duplicates: int = 0
    duplicates: list[str] = Field(default_factory=list)


class FailedCandidate(BaseModel):
    """A candidate that could not be relaxed, or whose result a sanity check rejected."""

    structure_id: str
    error: str
    energy_per_atom: float | None = Field(None, description="eV/atom, for unphysical candidates")


class RankingDocument(BaseDocument):
    """Polymorphs of one formula ranked by MLIP energy; ``structure`` is the lowest one."""

    DATA_FIELDS: ClassVar[tuple[str, ...]] = ("structures",)

    task_type: Literal["ranking"] = "ranking"
    formula: str
    seed: int | None = Field(None, description="seed of the random candidates (reproducible ranking)")
    generation: dict[str, Any] = Field(default_factory=dict, description="candidate counts, skipped draws")
    n_candidates: int = 0
    n_failed: int = 0
    n_unphysical: int = 0
    n_unique: int = 0
    ranking: list[RankedStructure] = Field(default_factory=list)
    failed: list[FailedCandidate] = Field(default_factory=list)
    unphysical: list[FailedCandidate] = Field(
        default_factory=list, description="candidates in a model hole, left out of the ranking"
    )
    second_opinion_model: str | None = Field(None, description="model B of the second opinion")
    second_opinion: list[Opinion] = Field(
        default_factory=list, description="ΔE to the lowest finalist by model A and B, eV/atom; flags"
    )
    structures: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="relaxed structure of each ranked polymorph (data store)"
    )
