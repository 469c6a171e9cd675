"""Crystal prototypes built from space group + Wyckoff positions (pymatgen), with site labels.

A prototype's sites carry labels (``A``, ``B``, ``X``...); a decoration maps labels to elements.
The lattice is first built with a = 1 Å and the prototype's axial ratios, then scaled so that
nearest-neighbour distances match sums of covalent radii (Cordero et al., Dalton Trans. 2008,
via ASE): the mean over sites of (r_i + r_j)/d_ij is the scale. That puts a starting guess
within ~10 % of the relaxed lattice, which FIRE with a cell filter removes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from ase.data import covalent_radii
from pymatgen.core import Element, Lattice, Structure

from mlipflows.errors import MlipflowsError


class PrototypeError(MlipflowsError):
    """Unknown prototype or a decoration that does not fit its sites."""


@dataclass(frozen=True)
class Prototype:
    """A structure type.

    Attributes:
        name: library key, e.g. "perovskite".
        spacegroup: Hermann–Mauguin symbol understood by pymatgen.
        system: "cubic", "tetragonal" or "hexagonal" (rhombohedral groups in hexagonal axes).
        c_over_a: axial ratio for non-cubic systems.
        sites: (label, fractional coordinates of one Wyckoff representative) in order.
        description: formula type and an example compound.
    """

    name: str
    spacegroup: str
    system: str
    sites: tuple[tuple[str, tuple[float, float, float]], ...]
    description: str
    c_over_a: float = 1.0
    primitive: bool = field(default=True)

    @property
    def labels(self) -> list[str]:
        return list(dict.fromkeys(label for label, _ in self.sites))

    def _template(self, species: list[str]) -> Structure:
        if self.system == "cubic":
            lattice = Lattice.cubic(1.0)
        elif self.system == "tetragonal":
            lattice = Lattice.tetragonal(1.0, self.c_over_a)
        else:
            lattice = Lattice.hexagonal(1.0, self.c_over_a)
        coords = [list(c) for _, c in self.sites]
        s = Structure.from_spacegroup(self.spacegroup, lattice, species, coords)
        s.merge_sites(tol=1e-3, mode="delete")
        return s

    def stoichiometry(self) -> dict[str, int]:
        """Smallest whole-number atom counts per label (e.g. perovskite A1 B1 X3)."""
        from math import gcd

        label_of = {ph: label for ph, (label, _) in zip(_PLACEHOLDERS, self.sites, strict=False)}
        counts = Counter(label_of[site.specie.symbol] for site in _placeholder_template(self))
        divisor = 0
        for n in counts.values():
            divisor = gcd(divisor, n)
        return {label: n // divisor for label, n in counts.items()}

    def build(self, decoration: dict[str, str]) -> Structure:
        """The prototype decorated with elements, lattice scaled from covalent radii."""
        missing = [label for label in self.labels if label not in decoration]
        extra = [label for label in decoration if label not in self.labels]
        if missing or extra:
            raise PrototypeError(
                f"prototype {self.name} has sites {self.labels}; "
                f"missing {missing or 'none'}, unknown {extra or 'none'}"
            )
        for el in decoration.values():
            if not Element.is_valid_symbol(el):
                raise PrototypeError(f"{el!r} is not an element symbol (prototype {self.name})")
        # the geometry does not depend on the elements: substitute into the cached template
        # (building a pymatgen SpaceGroup per candidate would dominate a large campaign)
        template = _placeholder_template(self).copy()
        template.replace_species(
            {ph: decoration[label] for ph, (label, _) in zip(_PLACEHOLDERS, self.sites, strict=False)}
        )
        s = scale_to_radii(template)
        # reduce only after scaling: pymatgen's site tolerance is absolute (Å)
        return s.get_primitive_structure() if self.primitive else s


# one distinct stand-in element per entry of Prototype.sites (a label may have several entries)
_PLACEHOLDERS = ("Cu", "Ag", "Au", "Ni", "Pd", "Pt", "Rh", "Ir")


@cache
def _placeholder_template(prototype: Prototype) -> Structure:
    """The prototype's conventional cell (unit scale) with stand-in elements per site entry."""
    if len(prototype.sites) > len(_PLACEHOLDERS):
        raise PrototypeError(f"prototype {prototype.name} has more site entries than placeholders")
    return prototype._template(list(_PLACEHOLDERS[: len(prototype.sites)]))


def scale_to_radii(structure: Structure) -> Structure:
    """Scale the lattice so nearest-neighbour distances match covalent radius sums on average."""
    radii = np.array([covalent_radii[site.specie.Z] for site in structure])
    dist = structure.distance_matrix.copy()
    np.fill_diagonal(dist, np.inf)
    if len(structure) == 1:
        dist = np.array([[min(structure.lattice.abc)]])
    ratios = []
    for i in range(len(structure)):
        j = int(np.argmin(dist[i]))
        d = dist[i, j] if len(structure) > 1 else dist[0, 0]
        ratios.append((radii[i] + radii[j]) / d)
    scale = float(np.mean(ratios))
    out = structure.copy()
    out.scale_lattice(structure.volume * scale**3)
    return out


_Q = 0.25
PROTOTYPES: dict[str, Prototype] = {
    p.name: p
    for p in [
        Prototype("fcc", "Fm-3m", "cubic", (("A", (0, 0, 0)),), "A, e.g. Cu"),
        Prototype("bcc", "Im-3m", "cubic", (("A", (0, 0, 0)),), "A, e.g. Fe"),
        Prototype("hcp", "P6_3/mmc", "hexagonal", (("A", (1 / 3, 2 / 3, _Q)),), "A, e.g. Mg", 1.633),
        Prototype("diamond", "Fd-3m", "cubic", (("A", (0, 0, 0)),), "A, e.g. Si"),
        Prototype(
            "graphite",
            "P6_3/mmc",
            "hexagonal",
            (("A", (0, 0, _Q)), ("A", (1 / 3, 2 / 3, _Q))),
            "A, e.g. C (hexagonal AB stacking)",
            2.73,
        ),
        Prototype(
            "rocksalt",
            "Fm-3m",
            "cubic",
            (("A", (0, 0, 0)), ("B", (0.5, 0.5, 0.5))),
            "AB, e.g. NaCl",
        ),
        Prototype("cscl", "Pm-3m", "cubic", (("A", (0, 0, 0)), ("B", (0.5, 0.5, 0.5))), "AB, e.g. CsCl"),
        Prototype("zincblende", "F-43m", "cubic", (("A", (0, 0, 0)), ("B", (_Q, _Q, _Q))), "AB, e.g. GaAs"),
        Prototype(
            "wurtzite",
            "P6_3mc",
            "hexagonal",
            (("A", (1 / 3, 2 / 3, 0)), ("B", (1 / 3, 2 / 3, 0.375))),
            "AB, e.g. ZnO",
            1.633,
        ),
        Prototype(
            "nias",
            "P6_3/mmc",
            "hexagonal",
            (("A", (0, 0, 0)), ("B", (1 / 3, 2 / 3, _Q))),
            "AB, e.g. NiAs",
            1.39,
        ),
        Prototype("fluorite", "Fm-3m", "cubic", (("A", (0, 0, 0)), ("B", (_Q, _Q, _Q))), "AB2, e.g. CaF2"),
        Prototype(
            "antifluorite",
            "Fm-3m",
            "cubic",
            (("A", (_Q, _Q, _Q)), ("B", (0, 0, 0))),
            "A2B, e.g. Li2O",
        ),
        Prototype(
            "rutile",
            "P4_2/mnm",
            "tetragonal",
            (("A", (0, 0, 0)), ("B", (0.305, 0.305, 0))),
            "AB2, e.g. TiO2",
            0.644,
        ),
        Prototype(
            "anatase",
            "I4_1/amd",
            "tetragonal",
            (("A", (0, 0, 0)), ("B", (0, 0, 0.2083))),
            "AB2, e.g. TiO2",
            2.51,
        ),
        Prototype(
            "cdi2",
            "P-3m1",
            "hexagonal",
            (("A", (0, 0, 0)), ("B", (1 / 3, 2 / 3, _Q))),
            "AB2, e.g. CdI2",
            1.61,
        ),
        Prototype(
            "corundum",
            "R-3c",
            "hexagonal",
            (("A", (0, 0, 0.352)), ("B", (0.306, 0, _Q))),
            "A2B3, e.g. Al2O3",
            2.73,
        ),
        Prototype(
            "perovskite",
            "Pm-3m",
            "cubic",
            (("A", (0, 0, 0)), ("B", (0.5, 0.5, 0.5)), ("X", (0.5, 0.5, 0))),
            "ABX3, e.g. SrTiO3",
        ),
        Prototype(
            "spinel",
            "Fd-3m",
            "cubic",
            (("A", (0, 0, 0)), ("B", (0.625, 0.625, 0.625)), ("X", (0.3875, 0.3875, 0.3875))),
            "AB2X4, e.g. MgAl2O4",
        ),
        Prototype(
            "heusler",
            "Fm-3m",
            "cubic",
            (("X", (_Q, _Q, _Q)), ("Y", (0, 0, 0)), ("Z", (0.5, 0.5, 0.5))),
            "X2YZ, e.g. Cu2MnAl",
        ),
    ]
}


def get_prototype(name: str) -> Prototype:
    try:
        return PROTOTYPES[name.lower()]
    except KeyError:
        raise PrototypeError(f"unknown prototype {name!r}; choose from {', '.join(PROTOTYPES)}") from None


def prototypes_for_formula(formula: str) -> list[tuple[Prototype, dict[str, str]]]:
    """Every library prototype (and site decoration) whose stoichiometry matches ``formula``."""
    from itertools import permutations

    from pymatgen.core import Composition

    comp = Composition(formula).reduced_composition
    els = [el.symbol for el in comp.elements]
    matches = []
    for proto in PROTOTYPES.values():
        stoich = proto.stoichiometry()
        if len(stoich) != len(els):
            continue
        for perm in permutations(els):
            deco = dict(zip(proto.labels, perm, strict=True))
            trial = Composition({deco[label]: n for label, n in stoich.items()}).reduced_composition
            if trial == comp:
                matches.append((proto, deco))
    return matches
