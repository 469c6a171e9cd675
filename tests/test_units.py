"""Every field's unit comes from its schema's description: the report's headers use them."""

from __future__ import annotations

import pytest

from mlipflows.schemas.units import document_classes, field_unit, unit_of


@pytest.mark.parametrize(
    ("task", "field", "unit"),
    [
        ("phonon", "min_frequency", "THz"),
        ("phonon", "setup.relax.max_force", "eV/Å"),  # nested models are followed
        ("phonon", "heat_capacity", "J/(K·mol)"),
        ("kappa", "kappa_tot_avg", "W/(m·K)"),
        ("eos", "b0", "GPa"),
        ("eos", "v0_per_atom", "Å³/atom"),
        ("elastic", "k_vrh", "GPa"),
        ("stability", "e_above_hull", "eV/atom"),
        ("relax", "pressure", "GPa"),
        ("elastic", "poisson_ratio", None),  # dimensionless
        ("phonon", "has_imaginary_modes", None),  # a THz inside a rule is not the field's unit
        ("phonon", "setup.n_supercell_atoms", None),
        ("phonon", "no_such_field", None),
        ("no_such_task", "b0", None),
    ],
)
def test_field_units(task, field, unit):
    assert field_unit(task, field) == unit


def test_every_task_type_has_a_class_and_units_are_read_from_the_last_part():
    assert {"relax", "static", "stability", "phonon", "kappa", "elastic", "eos"} <= set(document_classes())
    assert unit_of("bulk modulus, Voigt–Reuss–Hill, GPa") == "GPa"
    assert unit_of("eV/atom; negative = below the reference hull") == "eV/atom"
    assert unit_of("the space group") is None and unit_of(None) is None
