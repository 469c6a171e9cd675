from __future__ import annotations

import numpy as np
import pytest

from mlipflows.prototypes import PROTOTYPES, PrototypeError, get_prototype, prototypes_for_formula

EXAMPLES = {
    "fcc": ({"A": "Cu"}, "Fm-3m", "Cu"),
    "bcc": ({"A": "Fe"}, "Im-3m", "Fe"),
    "hcp": ({"A": "Mg"}, "P6_3/mmc", "Mg"),
    "diamond": ({"A": "Si"}, "Fd-3m", "Si"),
    "graphite": ({"A": "C"}, "P6_3/mmc", "C"),
    "rocksalt": ({"A": "Na", "B": "Cl"}, "Fm-3m", "NaCl"),
    "cscl": ({"A": "Cs", "B": "Cl"}, "Pm-3m", "CsCl"),
    "zincblende": ({"A": "Ga", "B": "As"}, "F-43m", "GaAs"),
    "wurtzite": ({"A": "Zn", "B": "O"}, "P6_3mc", "ZnO"),
    "nias": ({"A": "Ni", "B": "As"}, "P6_3/mmc", "NiAs"),
    "fluorite": ({"A": "Ca", "B": "F"}, "Fm-3m", "CaF2"),
    "antifluorite": ({"A": "Li", "B": "O"}, "Fm-3m", "Li2O"),
    "rutile": ({"A": "Ti", "B": "O"}, "P4_2/mnm", "TiO2"),
    "anatase": ({"A": "Ti", "B": "O"}, "I4_1/amd", "TiO2"),
    "cdi2": ({"A": "Cd", "B": "I"}, "P-3m1", "CdI2"),
    "corundum": ({"A": "Al", "B": "O"}, "R-3c", "Al2O3"),
    "perovskite": ({"A": "Sr", "B": "Ti", "X": "O"}, "Pm-3m", "SrTiO3"),
    "spinel": ({"A": "Mg", "B": "Al", "X": "O"}, "Fd-3m", "MgAl2O4"),
    "heusler": ({"X": "Cu", "Y": "Mn", "Z": "Al"}, "Fm-3m", "MnAlCu2"),
}


@pytest.mark.parametrize("name", sorted(PROTOTYPES))
def test_prototype_symmetry_composition_and_sane_bonds(name):
    deco, spacegroup, formula = EXAMPLES[name]
    s = PROTOTYPES[name].build(deco)
    assert s.get_space_group_info(symprec=0.01)[0] == spacegroup
    assert s.composition.reduced_formula == formula
    if len(s) > 1:
        d = s.distance_matrix + np.eye(len(s)) * 99
        assert d.min() > 1.5  # radius scaling keeps atoms apart
    assert 5 < s.volume / len(s) < 40


def test_library_covers_the_issue_list():
    wanted = {
        "rocksalt",
        "cscl",
        "zincblende",
        "wurtzite",
        "fluorite",
        "antifluorite",
        "rutile",
        "anatase",
        "corundum",
        "perovskite",
        "spinel",
        "heusler",
        "nias",
        "cdi2",
        "bcc",
        "fcc",
        "hcp",
        "diamond",
    }
    assert wanted <= set(PROTOTYPES)


def test_lattice_scales_with_radii():
    small = get_prototype("rocksalt").build({"A": "Li", "B": "F"})
    large = get_prototype("rocksalt").build({"A": "Cs", "B": "I"})
    assert large.volume > 2 * small.volume


def test_bad_decorations():
    with pytest.raises(PrototypeError, match="has sites"):
        get_prototype("perovskite").build({"A": "Sr", "B": "Ti"})
    with pytest.raises(PrototypeError, match="not an element"):
        get_prototype("rocksalt").build({"A": "Xx", "B": "O"})
    with pytest.raises(PrototypeError, match="unknown prototype"):
        get_prototype("nonsense")


def test_prototypes_for_formula():
    names = {p.name for p, _ in prototypes_for_formula("TiO2")}
    assert {"rutile", "anatase", "fluorite", "cdi2"} <= names
    assert {p.name for p, _ in prototypes_for_formula("SrTiO3")} == {"perovskite"}
