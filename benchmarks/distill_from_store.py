"""Distil a pretrained model's labels from our results store into a small, fast model of ours.

1. ``StaticMaker`` chunk jobs label strained, rattled (Ga,Al)N supercells (wurtzite,
   zincblende, rocksalt; random Ga/Al alloys) with the teacher (default SevenNet-0) and store
   the results (campaigns ``distil-train`` and ``distil-test``).
2. ``mlipflows.training.train`` fits an MPNICE-style student on the stored energies, forces
   and stresses of ``distil-train`` (a ``store:`` data set, nothing exported by hand).
3. Prints the student's errors against the teacher on the held-out ``distil-test`` labels and
   both models' atom-steps/s (energy + forces) on the same 128-atom cell, side by side.

    nice -n 10 python benchmarks/distill_from_store.py [--n-train 240] [--max-time 600]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

PROTOTYPES = ("wurtzite", "zincblende", "rocksalt")


def structures(n: int, seed: int) -> list:
    """``n`` strained, rattled 16-atom (Ga,Al)N supercells."""
    from pymatgen.core import Structure

    from mlipflows.prototypes import get_prototype

    rng = np.random.default_rng(seed)
    out: list[Structure] = []
    while len(out) < n:
        proto = PROTOTYPES[len(out) % len(PROTOTYPES)]
        cell = get_prototype(proto).build({"A": "Ga", "B": "N"})
        cell.make_supercell([2, 2, 2] if len(cell) <= 2 else [2, 2, 1])  # 16 atoms
        for site in range(len(cell)):
            if cell[site].specie.symbol == "Ga" and rng.random() < rng.random():
                cell.replace(site, "Al")
        strain = rng.normal(scale=0.03, size=(3, 3))
        cell.apply_strain(0.5 * (strain + strain.T))
        cell.perturb(float(rng.uniform(0.02, 0.15)))
        out.append(cell)
    return out


def label(structs: list, teacher: str, campaign: str, store) -> None:
    from jobflow import run_locally

    from mlipflows.makers import StaticMaker, relax_flow
    from mlipflows.makers.base import ChunkSettings

    ids = [f"{campaign}-{k}" for k in range(len(structs))]
    maker = StaticMaker(chunk=ChunkSettings(model=teacher, campaign=campaign))
    run_locally(relax_flow(structs, ids, chunk_size=64, maker=maker), store=store, log=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="sevennet-0")
    parser.add_argument("--n-train", type=int, default=240)
    parser.add_argument("--n-test", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--max-time", type=float, default=600.0, help="training time box, s")
    parser.add_argument("--out", type=Path, default=None, help="write the numbers here (JSON)")
    args = parser.parse_args()
    os.environ.setdefault("MLIPFLOWS_HOME", tempfile.mkdtemp(prefix="mlipflows-distil-"))
    work = Path(os.environ["MLIPFLOWS_HOME"])

    import torch
    from model_speed import atom_steps_per_second  # benchmarks/ is on sys.path when run as a script

    from mlipflows.models.checkpoint import load_model
    from mlipflows.potentials import load_potential
    from mlipflows.store import get_job_store
    from mlipflows.training import DatasetSpec, TrainConfig, train
    from mlipflows.training.metrics import errors
    from mlipflows.training.store_data import StoreQuery, read_store

    torch.set_num_threads(1)
    store = get_job_store()
    t0 = time.perf_counter()
    label(structures(args.n_train, seed=0), args.teacher, "distil-train", store)
    label(structures(args.n_test, seed=1), args.teacher, "distil-test", store)
    t_label = time.perf_counter() - t0

    config = TrainConfig(
        name="distilled-gan-aln",
        architecture="mpnice",
        model={"n_channels": 32, "n_blocks": 2, "cutoff": 5.0, "electrostatics": False},
        datasets=[
            DatasetSpec(
                store=StoreQuery(campaign="distil-train", model=args.teacher, task_type="static"),
                head=args.teacher,
                validation_fraction=0.1,
            )
        ],
        loss={"energy": 100.0, "forces": 1.0, "stress": 1000.0},
        epochs=args.epochs,
        max_time_s=args.max_time,
        batch_size=4,
        lr=2e-3,
        output=work / "student.pt",
    )
    result = train(config, show_progress=False)
    student, _ = load_model(result.checkpoint)
    test = read_store(StoreQuery(campaign="distil-test", model=args.teacher), head=args.teacher, store=store)
    table = errors(student, test)["all"]

    probe = structures(1, seed=2)[0]
    probe.make_supercell([2, 2, 2])  # 128 atoms
    rate_teacher = atom_steps_per_second(load_potential(args.teacher), probe, repeats=5)
    rate_student = atom_steps_per_second(load_potential(str(result.checkpoint)), probe, repeats=5)
    numbers = {
        "teacher": args.teacher,
        "n_train": args.n_train,
        "n_test": len(test),
        "label_seconds": t_label,
        "epochs_run": len(result.history),
        "stopped": result.stopped,
        "student_parameters": student.n_parameters(),
        "student_vs_teacher_on_test": table,
        "atoms_in_speed_cell": len(probe),
        "atom_steps_per_s": {"teacher": rate_teacher, "student": rate_student},
        "speed_ratio": rate_student / rate_teacher,
    }
    print(json.dumps(numbers, indent=2))
    if args.out:
        args.out.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
