"""Benchmark structure sets: the shipped examples plus supercells, rattled off equilibrium."""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure

from mlipflows.commands.ui import EXAMPLES
from mlipflows.io import read_structures


def mixed_structures(n: int = 16, seed: int = 0) -> tuple[list[Structure], list[str]]:
    """``n`` structures of 2–80 atoms cycling through the examples and their supercells."""
    base = [read_structures(p)[0] for p in sorted(EXAMPLES.glob("*.cif"))]
    scalings = [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2)]
    rng = np.random.default_rng(seed)
    structures, ids = [], []
    k = 0
    while len(structures) < n:
        ex = base[k % len(base)]
        scale = scalings[(k // len(base)) % len(scalings)]
        s = ex.structure * scale
        disp = rng.normal(size=(len(s), 3))
        disp *= 0.05 / np.linalg.norm(disp, axis=1, keepdims=True)  # 0.05 Å in random directions
        s = Structure(s.lattice, s.species, s.cart_coords + disp, coords_are_cartesian=True)
        strain = np.eye(3) + rng.normal(scale=0.01, size=(3, 3))
        s = Structure(s.lattice.matrix @ strain, s.species, s.frac_coords)
        structures.append(s)
        ids.append(f"{ex.structure_id}-{'x'.join(map(str, scale))}-{k}")
        k += 1
    return structures, ids
