"""A second model's value next to the first one's, for one finalist."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from mlipflows.schemas.base import BaseDocument


class Opinion(BaseModel):
    """Model A's and model B's value for one finalist, eV/atom."""

    structure_id: str
    value_a: float | None = Field(None, description="model A: relative or formation energy, eV/atom")
    value_b: float | None = Field(None, description="model B: the same quantity, eV/atom")
    difference: float | None = Field(None, description="B − A, eV/atom")
    disagrees: bool = Field(False, description="|B − A| above the threshold, or B has no value")
    state_b: str = "successful"
    error_b: str | None = None


class SecondOpinionDocument(BaseDocument):
    """Model B's formation energy of one structure next to model A's (``model`` is model B)."""

    task_type: Literal["second_opinion"] = "second_opinion"
    model_a_formation_energy_per_atom: float | None = Field(None, description="eV/atom (model A's hull)")
    formation_energy_per_atom: float | None = Field(None, description="model B, eV/atom")
    difference: float | None = Field(None, description="B − A, eV/atom")
    threshold: float = Field(description="eV/atom")
    disagrees: bool = False
    energy_per_atom: float | None = Field(None, description="model B's relaxed energy, eV/atom")
