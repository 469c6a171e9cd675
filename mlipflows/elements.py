"""Elemental reference structures: what an element's energy per atom is measured on.

Bulk: fcc, bcc, hcp and diamond decorations (the lowest energy per atom is the element's
reference). Diatomic gases (H, N, O, F, Cl, Br, I): a dimer in a 12 Å box, which a 5–6 Å
cutoff model sees as isolated (MP uses molecular crystals; the difference is the weak
intermolecular binding, a few meV/atom with vdW-free MLIPs).
"""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from mlipflows.io import Candidate
from mlipflows.prototypes import PROTOTYPES

# Elements MP references as molecular solids; we model them as a dimer in a box (bond length Å).
DIATOMIC = {"H": 0.74, "N": 1.10, "O": 1.21, "F": 1.42, "Cl": 1.99, "Br": 2.28, "I": 2.67}
ELEMENT_PROTOTYPES = ("fcc", "bcc", "hcp", "diamond")


def elemental_references(elements: set[str]) -> tuple[list[Candidate], list[Candidate]]:
    """Per-element references: (bulk structures relaxed with their cell, dimers at fixed cell).

    Bulk: fcc, bcc, hcp and diamond decorations; the lowest MLIP energy per atom becomes μ.
    Diatomic gases (H, N, O, F, Cl, Br, I): a dimer in a 12 Å box, which a 5–6 Å cutoff model
    sees as isolated (MP uses molecular crystals; the difference is the weak intermolecular
    binding, a few meV/atom with vdW-free MLIPs).
    """
    bulk, dimers = [], []
    for el in sorted(elements):
        if el in DIATOMIC:
            d = DIATOMIC[el]
            box = Structure(Lattice.cubic(12.0), [el, el], [[0, 0, 0], [d, 0, 0]], coords_are_cartesian=True)
            dimers.append(Candidate(f"ref-{el}-dimer", box, "elemental reference (dimer in box)"))
            continue
        for name in ELEMENT_PROTOTYPES:
            s = PROTOTYPES[name].build({"A": el})
            bulk.append(Candidate(f"ref-{el}-{name}", s, f"elemental reference ({name})"))
    return bulk, dimers
