"""A second model's value next to the first one's, for one finalist."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Opinion(BaseModel):
    """Model A's and model B's value for one finalist, eV/atom."""

    structure_id: str
    value_a: float | None = Field(None, description="model A: relative or formation energy, eV/atom")
    value_b: float | None = Field(None, description="model B: the same quantity, eV/atom")
    difference: float | None = Field(None, description="B − A, eV/atom")
    disagrees: bool = Field(False, description="|B − A| above the threshold, or B has no value")
    state_b: str = "successful"
    error_b: str | None = None
