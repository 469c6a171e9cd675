"""Equation of state: energy–volume curve and its Birch–Murnaghan fit (energies eV, volumes Å³)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mlipflows.schemas.base import BaseDocument


class EosDocument(BaseDocument):
    """E(V) of one structure and the fitted V0, B0, B0′ (pymatgen ``EOS``)."""

    task_type: Literal["eos"] = "eos"
    eos: str = Field("birch_murnaghan", description="pymatgen EOS name")
    volumes: list[float] = Field(default_factory=list, description="cell volumes, Å³")
    energies: list[float | None] = Field(default_factory=list, description="eV (None: point failed)")
    v0: float | None = Field(None, description="equilibrium volume, Å³ per cell")
    v0_per_atom: float | None = Field(None, description="Å³/atom")
    e0_per_atom: float | None = Field(None, description="eV/atom at V0")
    b0: float | None = Field(None, description="bulk modulus, GPa")
    b1: float | None = Field(None, description="B0′ = dB/dP at V0 (dimensionless)")
    fit_rms: float | None = Field(None, description="RMS misfit of the fit, meV/atom")
    n_points_used: int = 0
