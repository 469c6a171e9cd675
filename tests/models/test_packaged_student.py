"""The shipped base student of SevenNet-0 (registry ``mpnice-sevennet-0``): loads offline by name,
covers the teacher's elements, starts from the teacher's isolated atoms, and relaxes like it."""

from __future__ import annotations

import pytest
import torch

from mlipflows.engine import RelaxSettings, relax
from mlipflows.models.checkpoint import PACKAGED
from mlipflows.potentials import REGISTRY, load_potential
from mlipflows.prototypes import get_prototype
from mlipflows.training.distill import teacher_isolated_energies

NAME = "mpnice-sevennet-0"


@pytest.fixture(scope="module")
def student():
    return load_potential(NAME)


def test_ships_with_its_replay_pool_and_held_out_errors(student) -> None:
    assert NAME in REGISTRY
    assert student.elements == load_potential("sevennet-0").elements
    for suffix in ("-replay.extxyz.gz", "-heldout.extxyz.gz"):
        assert (PACKAGED / f"{NAME}{suffix}").is_file()
    meta = torch.load(PACKAGED / f"{NAME}.pt", weights_only=True)["metadata"]
    held = meta["heldout"]
    assert meta["teacher"] == "sevennet-0" and held["all"]["n"] > 1000
    assert len(held["per_element"]) > 80
    assert held["all"]["energy_mae_mev_atom"] < 100 and held["all"]["force_mae_ev_a"] < 0.5


def test_isolated_atoms_are_the_teachers(student) -> None:
    elements = ["H", "O", "Fe", "Cs", "Bi"]
    mine = teacher_isolated_energies(student, elements)
    teacher = teacher_isolated_energies(load_potential("sevennet-0"), elements)
    assert mine == pytest.approx(teacher, abs=1e-4)


@pytest.mark.parametrize(
    ("proto", "deco"), [("rocksalt", {"A": "Na", "B": "Cl"}), ("zincblende", {"A": "Ga", "B": "As"})]
)
def test_relaxed_lattice_close_to_the_teachers(student, proto: str, deco: dict[str, str]) -> None:
    s = get_prototype(proto).build(deco)
    settings = RelaxSettings(fmax=0.02, max_steps=300)
    mine = relax([s], student, settings)[0]
    theirs = relax([s], load_potential("sevennet-0"), settings)[0]
    assert mine.error is None and theirs.error is None
    ratio = (mine.structure.volume / theirs.structure.volume) ** (1 / 3)
    assert ratio == pytest.approx(1.0, abs=0.03)
