"""Choose the distillation student by measurement: each of our architectures, same teacher labels,
same training budget, speed vs error relative to the teacher (default SevenNet-0).

1. Labels strained, rattled 16-atom (Ga,Al)N supercells with the teacher through ``StaticMaker``
   into the results store (``structures``/``label`` of ``benchmarks/distill_from_store.py``;
   campaigns ``students-train`` and ``students-test``; reused when the store already holds them).
2. Trains every student with ``mlipflows.training.train`` from the same ``store:`` data set and the
   same split, loss weights {energy 100, forces 1, stress 1000}, batch size, learning rate, seed and
   budget. The budget is CPU time (``--budget`` s of this process, one thread), so that students
   trained while other jobs load a shared machine still get the same compute: a short probe of each
   student's training steps (``time.process_time``) sets its epoch count so that the cosine
   learning-rate schedule ends at the budget; ``max_time_s`` (``--max-time``, wall clock, the same
   for every student) is only the hard stop.
3. Errors of each student against the teacher on the held-out labels (energy MAE meV/atom, force
   MAE eV/Å, stress MAE GPa; ``mlipflows.training.metrics.errors``) and, after all training,
   atom-steps/s (energy + forces, one structure per call, ``model_speed.atom_steps_per_second``) of
   every student and the teacher on 64-, 128-, 256- and 512-atom supercells of a (Ga,Al)N test
   structure, in interleaved rounds (every model once per round, median over ``--repeats`` rounds)
   so that a changing machine load hits all models alike.
4. Writes a JSON with everything (``--out``), prints a table and draws speed at 128 atoms vs energy
   and force MAE (``--plot``).

    cd /work/main && OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/student_architectures.py \\
        --out analysis/models/student_architectures.json [--budget 240] [--max-time 480] \\
        [--n-train 240] [--n-test 60] [--home DIR]

``--home DIR`` (or ``$MLIPFLOWS_HOME``) picks the store; without either a fresh temporary one is used.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

warnings.filterwarnings("ignore")

LOSS = {"energy": 100.0, "forces": 1.0, "stress": 1000.0}
CUTOFF = 5.0
NEQUIP = {
    "n_scalars": 16,
    "n_vectors": 8,
    "n_tensors": 4,
    "n_radial": 8,
    "n_blocks_short": 1,
    "n_blocks_charge": 1,
    "hidden": 32,
}
# name: (architecture, options); sizes after analysis/models/*-si-mlearn.yaml and the MPNICE student
# of benchmarks/distill_from_store.py, every cutoff 5 Å
STUDENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "mpnice": (
        "mpnice",
        {"n_channels": 32, "n_radial": 8, "n_blocks": 2, "hidden": 32, "electrostatics": False},
    ),
    "mpnice+qeq": (
        "mpnice",
        {"n_channels": 32, "n_radial": 8, "n_blocks": 2, "hidden": 32, "electrostatics": True},
    ),
    "geodite": ("geodite", {"n_channels": 16, "n_radial": 8, "n_blocks": 2, "hidden": 32}),
    "nequip-lr": ("nequip_lr", {**NEQUIP, "electrostatics": False}),
    "nequip-lr+qeq": ("nequip_lr", {**NEQUIP, "electrostatics": True}),
}
SIZES = {64: [2, 2, 1], 128: [2, 2, 2], 256: [4, 2, 2], 512: [4, 4, 2]}  # of a 16-atom cell


def ensure_labels(n: int, seed: int, teacher: str, campaign: str, store: Any) -> float:
    """Label ``n`` structures into ``campaign`` unless the store already holds exactly ``n``; seconds."""
    from distill_from_store import label, structures  # benchmarks/ is on sys.path when run as a script

    from mlipflows.errors import DataNotFoundError
    from mlipflows.training.store_data import StoreQuery, read_store

    try:
        held = len(read_store(StoreQuery(campaign=campaign, model=teacher), head=teacher, store=store))
    except DataNotFoundError:
        held = 0
    if held == n:
        return 0.0
    if held:
        raise SystemExit(f"store holds {held} != {n} results of campaign {campaign!r}: use a fresh --home")
    t0 = time.perf_counter()
    label(structures(n, seed=seed), teacher, campaign, store)
    return time.perf_counter() - t0


def cpu_seconds_per_epoch(config: Any, splits: tuple[list, list], n_steps: int = 6) -> float:
    """CPU time of one training epoch (steps with stress + validation) from a short timed probe."""
    import torch

    from mlipflows.models.potential import predict
    from mlipflows.training.data import collate
    from mlipflows.training.metrics import errors
    from mlipflows.training.trainer import build_for_data, loss_terms

    train_set, val_set = splits
    torch.manual_seed(config.seed)
    model = build_for_data(config, train_set)
    heads = model.readout.heads
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr)
    rng = np.random.default_rng(config.seed)
    times = []
    for k in range(n_steps + 1):  # the first step warms up
        chunk = [train_set[i] for i in rng.choice(len(train_set), config.batch_size, replace=False)]
        t0 = time.process_time()
        batch, t = collate(chunk, heads, dtype=torch.float32)
        pred = predict(model, batch, True, t.charge, t.head, create_graph=True)
        terms = loss_terms(pred, t, config)
        optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        optimizer.step()
        if k:
            times.append(time.process_time() - t0)
    t0 = time.process_time()
    errors(model, val_set, config.batch_size)
    t_val = time.process_time() - t0
    return math.ceil(len(train_set) / config.batch_size) * statistics.median(times) + t_val


def speeds(pots: dict[str, Any], probes: dict[int, Any], rounds: int) -> dict[str, dict[str, list[float]]]:
    """{model: {atoms: [atom-steps/s of each round]}}; in a round every model is timed once per size
    (``atom_steps_per_second`` with one warm-up and one timed call)."""
    from model_speed import atom_steps_per_second

    out: dict[str, dict[str, list[float]]] = {name: {str(n): [] for n in probes} for name in pots}
    for n, structure in probes.items():
        for _ in range(rounds):
            for name, pot in pots.items():
                out[name][str(n)].append(atom_steps_per_second(pot, structure, repeats=1))
    return out


def plot(numbers: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    teacher_rate = numbers["teacher_atom_steps_per_s"]["128"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), constrained_layout=True)
    panels = (
        ("energy_mae_mev_atom", "energy MAE vs teacher (meV/atom)"),
        ("force_mae_ev_a", "force MAE vs teacher (eV/Å)"),
    )
    for ax, (key, ylabel) in zip(axes, panels, strict=True):
        for name, s in numbers["students"].items():
            x, y = s["atom_steps_per_s"]["128"], s["test_vs_teacher"][key]
            qeq = s["model"].get("electrostatics", False)
            ax.scatter(x, y, s=45, zorder=3, marker="s" if qeq else "o")
            # with-Qeq labels left and below, without right and above: a pair's labels stay apart
            offset, align = ((-7, -13), "right") if qeq else ((7, 5), "left")
            ax.annotate(name, (x, y), textcoords="offset points", xytext=offset, ha=align, fontsize=9)
        ax.axvline(teacher_rate, color="0.3", ls="--", lw=1.2)
        ax.text(
            teacher_rate,
            0.97,
            f" {numbers['teacher']}\n (teacher)",
            transform=ax.get_xaxis_transform(),
            va="top",
            fontsize=9,
            color="0.3",
        )
        ax.set_xscale("log")
        fastest = max(s["atom_steps_per_s"]["128"] for s in numbers["students"].values())
        ax.set_xlim(0.6 * teacher_rate, 2.5 * fastest)
        ax.set_ylim(bottom=0, top=1.15 * max(s["test_vs_teacher"][key] for s in numbers["students"].values()))
        ax.set_xlabel("atom-steps/s, energy + forces, 128 atoms (1 CPU thread)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3, which="both")
    fig.suptitle(
        f"Students of {numbers['teacher']} on (Ga,Al)N: {numbers['budget_cpu_s']:.0f} CPU-s training each, "
        f"{numbers['n_train']} train + {numbers['n_validation']} validation / {numbers['n_test']} test labels"
    )
    fig.savefig(path, dpi=130)
    plt.close(fig)


def table(numbers: dict[str, Any]) -> str:
    sizes = [str(n) for n in SIZES]
    head = f"{'model':<15}{'params':>9}{'epochs':>8}{'E meV/at':>10}{'F eV/Å':>8}{'S GPa':>7}" + "".join(
        f"{'@' + n:>15}" for n in sizes
    )
    lines = [f"atom-steps/s (× teacher) at 64/128/256/512 atoms; errors vs {numbers['teacher']}", head]
    teacher = numbers["teacher_atom_steps_per_s"]
    for name, s in numbers["students"].items():
        err = s["test_vs_teacher"]
        rates = "".join(f"{s['atom_steps_per_s'][n]:>8.0f} ({s['speed_ratio'][n]:>3.0f}×)" for n in sizes)
        lines.append(
            f"{name:<15}{s['parameters']:>9,}{s['epochs_run']:>4}/{s['epochs_planned']:<3}"
            f"{err['energy_mae_mev_atom']:>10.2f}{err['force_mae_ev_a']:>8.3f}{err['stress_mae_gpa']:>7.3f}{rates}"
        )
    rates = "".join(f"{teacher[n]:>15.0f}" for n in sizes)
    lines.append(f"{numbers['teacher']:<15}{numbers['teacher_parameters']:>9,}{'':>33}{rates}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="sevennet-0")
    parser.add_argument("--n-train", type=int, default=240)
    parser.add_argument("--n-test", type=int, default=60)
    parser.add_argument("--budget", type=float, default=240.0, help="training CPU time per student, s")
    parser.add_argument(
        "--max-time", type=float, default=None, help="wall-clock hard stop (default 2×budget)"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="interleaved speed rounds (median)")
    parser.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    parser.add_argument(
        "--home", type=Path, default=None, help="MLIPFLOWS_HOME (default: env or a fresh temp)"
    )
    parser.add_argument("--out", type=Path, default=Path("analysis/models/student_architectures.json"))
    parser.add_argument("--plot", type=Path, default=Path("analysis/models/student_architectures.png"))
    args = parser.parse_args()
    if args.home is not None:
        os.environ["MLIPFLOWS_HOME"] = str(args.home)
    if "MLIPFLOWS_HOME" not in os.environ:
        os.environ["MLIPFLOWS_HOME"] = tempfile.mkdtemp(prefix="mlipflows-students-")
    max_time = args.max_time or 2 * args.budget
    work = Path(os.environ["MLIPFLOWS_HOME"])

    import torch
    from distill_from_store import structures
    from model_speed import n_parameters

    from mlipflows.models.checkpoint import load_model
    from mlipflows.potentials import load_potential
    from mlipflows.store import get_job_store
    from mlipflows.training import DatasetSpec, TrainConfig, train
    from mlipflows.training.metrics import errors
    from mlipflows.training.store_data import StoreQuery, read_store
    from mlipflows.training.trainer import load_splits

    torch.set_num_threads(1)
    t_start = time.perf_counter()
    load_start = os.getloadavg()
    store = get_job_store()
    t_label = ensure_labels(args.n_train, 0, args.teacher, "students-train", store)
    t_label += ensure_labels(args.n_test, 1, args.teacher, "students-test", store)
    test = read_store(
        StoreQuery(campaign="students-test", model=args.teacher), head=args.teacher, store=store
    )

    probe = structures(1, seed=2)[0]
    probes = {}
    for n, scale in SIZES.items():
        cell = probe.copy()
        cell.make_supercell(scale)
        assert len(cell) == n, (len(cell), n)
        probes[n] = cell
    teacher = load_potential(args.teacher)

    dataset = DatasetSpec(
        store=StoreQuery(campaign="students-train", model=args.teacher, task_type="static"),
        head=args.teacher,
        validation_fraction=0.1,
    )

    def config_for(name: str, epochs: int) -> TrainConfig:
        architecture, options = STUDENTS[name]
        return TrainConfig(
            name=f"student-{name}",
            architecture=architecture,
            model={"cutoff": CUTOFF, **options},
            datasets=[dataset],
            loss=LOSS,
            epochs=epochs,
            max_time_s=max_time,
            batch_size=args.batch_size,
            lr=args.lr,
            warmup_steps=50,
            ema_decay=0.99,
            patience=epochs,  # only the budget (or the planned epochs) stops a student
            seed=args.seed,
            threads=1,
            output=work / f"student-{name}.pt",
        )

    splits = load_splits(config_for(args.students[0], 1))  # one split for every student
    students: dict[str, Any] = {}
    for name in args.students:
        epoch_s = cpu_seconds_per_epoch(config_for(name, 1), splits)
        planned = max(1, int(0.95 * args.budget / epoch_s))
        config = config_for(name, planned)
        t0, c0 = time.perf_counter(), time.process_time()
        result = train(config, show_progress=False, splits=splits)
        t_train, c_train = time.perf_counter() - t0, time.process_time() - c0
        model, _ = load_model(result.checkpoint)
        err = errors(model, test)["all"]
        students[name] = {
            "architecture": config.architecture,
            "model": config.model,
            "parameters": model.n_parameters(),
            "probe_cpu_seconds_per_epoch": epoch_s,
            "epochs_planned": planned,
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "stopped": result.stopped,
            "train_wall_seconds": t_train,
            "train_cpu_seconds": c_train,
            "validation": result.validation.get("all", {}),
            "test_vs_teacher": err,
            "checkpoint": str(result.checkpoint),
        }
        print(
            f"{name}: {len(result.history)}/{planned} epochs ({result.stopped}) in {c_train:.0f} CPU-s "
            f"({t_train:.0f} s wall), E {err['energy_mae_mev_atom']:.2f} meV/atom, "
            f"F {err['force_mae_ev_a']:.3f} eV/Å",
            flush=True,
        )

    pots = {name: load_potential(s["checkpoint"]) for name, s in students.items()}
    rounds = speeds({args.teacher: teacher, **pots}, probes, args.repeats)
    median = {name: {n: statistics.median(v) for n, v in r.items()} for name, r in rounds.items()}
    teacher_rates = median[args.teacher]
    for name, s in students.items():
        s["atom_steps_per_s"] = median[name]
        s["speed_ratio"] = {n: r / teacher_rates[n] for n, r in median[name].items()}

    numbers = {
        "teacher": args.teacher,
        "chemistry": "(Ga,Al)N, strained/rattled 16-atom wurtzite, zincblende, rocksalt supercells",
        "n_train_labels": args.n_train,
        "n_train": len(splits[0]),
        "n_validation": len(splits[1]),
        "n_test": len(test),
        "budget_cpu_s": args.budget,
        "max_time_s": max_time,
        "loss": LOSS,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "cutoff": CUTOFF,
        "torch_threads": 1,
        "speed_rounds": args.repeats,
        "label_seconds": t_label,
        "teacher_parameters": n_parameters(teacher),
        "teacher_atom_steps_per_s": teacher_rates,
        "atom_steps_per_s_rounds": rounds,
        "students": students,
        "load_average_start_end": [load_start[0], os.getloadavg()[0]],
        "wall_seconds": time.perf_counter() - t_start,
        "home": str(work),
    }
    print(table(numbers))
    print(f"wall time {numbers['wall_seconds']:.0f} s (labels {t_label:.0f} s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(numbers, indent=2))
    plot(numbers, args.plot)
    print(f"wrote {args.out} and {args.plot}")


if __name__ == "__main__":
    main()
