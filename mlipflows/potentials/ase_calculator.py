"""An ASE Calculator over any mlipflows potential, so atomate2/ASE code can use our models."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from mlipflows.engine.batch import Batch
from mlipflows.potentials import Potential, load_potential


class MlipflowsCalculator(Calculator):
    """ASE calculator: energy (eV), forces (eV/Å), stress (eV/Å³, Voigt, ASE sign)."""

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, model: str | Potential = "sevennet-0", device: str = "cpu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.potential = load_potential(model, device=device) if isinstance(model, str) else model

    def calculate(
        self,
        atoms: Atoms | None = None,
        properties: list[str] | None = None,
        system_changes: list[str] = all_changes,
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        want_stress = bool(self.atoms.pbc.all())
        out = self.potential.evaluate(
            Batch.from_atoms([self.atoms], device=self.potential.device), compute_stress=want_stress
        )
        energy = float(out.energy[0])
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "forces": out.forces.double().cpu().numpy(),
        }
        if out.stress is not None:
            self.results["stress"] = full_3x3_to_voigt_6_stress(np.asarray(out.stress[0].double().cpu()))
