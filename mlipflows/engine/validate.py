"""Checks before compute: each returns a reason a user can act on, or None."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure
from vesin import NeighborList

from mlipflows.potentials.base import Potential

MIN_DISTANCE = 0.5  # Å; closer pairs are not physical for any of our models


def check_structure(
    structure: Structure, potential: Potential, min_distance: float = MIN_DISTANCE
) -> str | None:
    """Why ``structure`` cannot be evaluated by ``potential`` (None when it can)."""
    if len(structure) == 0:
        return "structure has no atoms"
    if not structure.is_ordered:
        return disorder_reason(structure)
    if not np.isfinite(structure.cart_coords).all() or not np.isfinite(structure.lattice.matrix).all():
        return "structure has non-finite coordinates or lattice"
    if structure.volume < 1e-3:
        return f"cell volume {structure.volume:.3g} Å³ is degenerate"
    symbols = {el.symbol for el in structure.composition.elements}
    missing = potential.unsupported_elements(symbols)
    if missing:
        return f"element {', '.join(missing)} not supported by {potential.name}"
    nl = NeighborList(cutoff=min_distance, full_list=False)
    i, j, d = nl.compute(structure.cart_coords, structure.lattice.matrix, True, quantities="ijd")
    if len(d):
        k = int(np.argmin(d))
        return (
            f"atoms {int(i[k])} and {int(j[k])} are {d[k]:.3f} Å apart "
            f"(< {min_distance} Å): check the structure for overlapping sites"
        )
    return None


def disorder_reason(structure: Structure) -> str:
    """Why a structure with partial occupancies cannot be evaluated, and what to do about it."""
    sites = sum(not site.is_ordered for site in structure)
    return (
        f"{sites} of {len(structure)} sites are partially occupied ({structure.composition.formula}): "
        "an interatomic potential needs one atom per site; order the structure first (e.g. "
        "pymatgen's OrderDisorderedStructureTransformation or a supercell enumeration)"
    )


def estimate_edges(structure: Structure, cutoff: float) -> float:
    """Expected neighbour pairs at the structure's density (for autobatching)."""
    density = len(structure) / structure.volume
    return len(structure) * (4.0 / 3.0) * np.pi * cutoff**3 * density
