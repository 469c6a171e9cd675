"""Relax and static results: one document per structure per calculation."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field
from pymatgen.core import Structure

from mlipflows.engine.results import SystemResult
from mlipflows.potentials.base import EV_PER_A3_TO_GPA
from mlipflows.schemas.base import BaseDocument, Timings, density

TaskType = Literal["static", "relax"]


class TaskDocument(BaseDocument):
    """The result of one relaxation or static calculation on one structure."""

    DATA_FIELDS: ClassVar[tuple[str, ...]] = ("forces", "trajectory")
    FLAT_EXCLUDE: ClassVar[tuple[str, ...]] = ("input_structure",)

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
    spacegroup_before: int | None = Field(None, description="symmetrized relaxations: input space group")
    spacegroup_after: int | None = Field(None, description="symmetrized relaxations: final space group")
    symmetry_changed: bool = Field(False, description="the space group changed during the relaxation")

    @classmethod
    def from_result(
        cls,
        result: SystemResult,
        fields: dict[str, Any],
        task_type: TaskType,
        input_structure: Structure,
    ) -> TaskDocument:
        """The document of one engine result; ``fields`` from :func:`mlipflows.makers.base.provenance`
        on the result's final structure."""
        s = result.structure
        ok = result.error is None  # unphysical results keep their data, for the user to look at
        stress_gpa = None
        pressure = None
        if ok and result.stress is not None:
            stress = np.asarray(result.stress) * EV_PER_A3_TO_GPA
            stress_gpa = stress.tolist()
            pressure = float(-np.trace(stress) / 3.0)
        return cls(
            **fields,
            task_type=task_type,
            state=result.state,  # type: ignore[arg-type]
            error=result.reason,
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
            density=density(s),
            input_structure=input_structure.as_dict() if task_type == "relax" else None,
            trajectory=result.trajectory or None,
            spacegroup_before=result.spacegroup_before,
            spacegroup_after=result.spacegroup_after,
            symmetry_changed=result.symmetry_changed,
        )
