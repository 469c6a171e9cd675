"""`mlipflows distill`: label a base pool with a teacher, train a student from the store, ship it."""

from __future__ import annotations

import numpy as np
import torch
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.engine import Batch
from mlipflows.potentials import load_potential
from mlipflows.prototypes import get_prototype
from mlipflows.training.data import Sample
from mlipflows.training.distill import is_test, plausible, teacher_isolated_energies

runner = CliRunner()


def test_held_out_split_is_stable_and_about_a_tenth() -> None:
    ids = [f"wbm-{k}" for k in range(2000)]
    share = sum(is_test(i) for i in ids) / len(ids)
    assert 0.07 < share < 0.13
    assert [is_test(i) for i in ids[:50]] == [is_test(i) for i in ids[:50]]


def test_implausible_teacher_labels_are_dropped() -> None:
    from ase import Atoms

    atoms = Atoms("NaCl", positions=[[0, 0, 0], [2.8, 0, 0]], cell=[5.6, 5.6, 5.6], pbc=True)
    e0 = {"Na": -1.0, "Cl": -2.0}
    forces = np.zeros((2, 3))
    good = Sample(atoms=atoms, energy=-9.0, forces=forces, stress=np.zeros((3, 3)))
    assert plausible(good, e0)
    assert not plausible(Sample(atoms=atoms, energy=-2.5, forces=forces), e0)  # above isolated atoms
    assert not plausible(Sample(atoms=atoms, energy=-9.0, forces=forces + 40.0), e0)
    assert not plausible(Sample(atoms=atoms, energy=-9.0, forces=forces, stress=np.eye(3) * 2.5), e0)
    assert not plausible(Sample(atoms=atoms, energy=float("nan"), forces=forces), e0)


def test_distill_labels_trains_and_ships_a_student(tmp_path) -> None:
    out = tmp_path / "student.pt"
    result = runner.invoke(
        app,
        [
            "distill", "--teacher", "morse", "--label", "--data", str(tmp_path / "none"),
            "--elements", "Li,Na,F,Cl", "--binaries", "6", "--out", str(out),
            "--channels", "8", "--blocks", "1", "--epochs", "2", "--max-time", "60", "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for suffix in ("-replay.extxyz.gz", "-heldout.extxyz.gz"):
        assert (tmp_path / f"student{suffix}").is_file()
    content = torch.load(out, weights_only=True)
    heldout = content["metadata"]["heldout"]
    assert heldout["all"]["n"] > 0
    assert set(heldout["per_element"]) <= {"Li", "Na", "F", "Cl"}
    assert all(row["few"] for row in heldout["per_element"].values())  # a tiny pool: marked
    student = load_potential(str(out))
    assert student.elements >= {"Li", "Na", "F", "Cl"}
    # the student's isolated atoms are the teacher's (Morse: 0 eV), not a least-squares fit
    own = teacher_isolated_energies(student, ["Li", "F"])
    assert own == {"Li": 0.0, "F": 0.0} or max(abs(v) for v in own.values()) < 1e-4
    nacl = get_prototype("rocksalt").build({"A": "Na", "B": "Cl"})
    assert torch.isfinite(student.evaluate(Batch.from_structures([nacl])).energy).all()

    # the labels are resumable: a second --label run labels nothing new
    again = runner.invoke(
        app,
        [
            "distill", "--teacher", "morse", "--label", "--data", str(tmp_path / "none"),
            "--elements", "Li,Na,F,Cl", "--binaries", "6", "--out", str(tmp_path / "s2.pt"),
            "--channels", "8", "--blocks", "1", "--epochs", "1", "--max-time", "30", "--quiet",
        ],
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "labelled 0 structures" in again.output
