"""What the engine returns for each input structure."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Structure


@dataclass
class SystemResult:
    """Outcome of one structure's calculation.

    Attributes:
        index: position in the input list.
        structure: final structure (the input one for static or failed calculations).
        energy: eV (None when failed).
        forces: (n, 3) eV/Å.
        stress: (3, 3) eV/Å³, ASE sign convention.
        converged: relaxations: generalised forces below fmax; statics: True when evaluated.
        n_steps: optimizer steps taken (0 for statics).
        error: reason it failed (no usable energy), None otherwise.
        unphysical: reason a sanity check (:mod:`mlipflows.engine.sanity`) rejected it; the
            energy, forces and structure are kept so the user can look, but nothing trusts them.
        trajectory: energy (eV) after each evaluation.
        wall_time: seconds from entering the batch to leaving it.
        spacegroup_before / spacegroup_after: international numbers at the relaxation's
            ``symprec`` (symmetrized relaxations only; None otherwise).
    """

    index: int
    structure: Structure
    energy: float | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    converged: bool = False
    n_steps: int = 0
    error: str | None = None
    unphysical: str | None = None
    trajectory: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    spacegroup_before: int | None = None
    spacegroup_after: int | None = None

    @property
    def ok(self) -> bool:
        """Usable: it did not fail and passed the sanity checks."""
        return self.error is None and self.unphysical is None

    @property
    def state(self) -> str:
        """ "successful", "failed" or "unphysical" (the documents' ``state``)."""
        if self.error is not None:
            return "failed"
        return "unphysical" if self.unphysical is not None else "successful"

    @property
    def reason(self) -> str | None:
        """Why it is not usable (the error or the failed sanity check), None when it is."""
        return self.error or self.unphysical

    @property
    def symmetry_changed(self) -> bool:
        """True when a symmetrized relaxation ended in another space group than it started in."""
        if self.spacegroup_before is None or self.spacegroup_after is None:
            return False
        return self.spacegroup_before != self.spacegroup_after

    @property
    def max_force(self) -> float | None:
        if self.forces is None or len(self.forces) == 0:
            return None
        return float(np.linalg.norm(self.forces, axis=1).max())
