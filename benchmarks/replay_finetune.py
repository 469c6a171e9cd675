"""Multi-head fine-tuning with and without replay: new-head accuracy and old-head forgetting.

Starts from one of our checkpoints trained on mlearn Si (PBE, head ``pbe``), adds a head
``pyxtal`` for the PyXtal_FF Si8 polymorphs (random symmetric structures, mostly far from
anything in mlearn; those above -4 eV/atom dropped as in PyXtal_FF's Si_train) and
fine-tunes three ways with the same schedule: no replay, random replay and farthest-point
replay of the mlearn training set. Reports energy/force MAE of the new head on held-out Si8
structures and of the old head on the mlearn Si test set, before and after (forgetting).

    nice -n 10 python benchmarks/replay_finetune.py \\
        --base mlipflows/data/models/geodite-si-mlearn.pt --seeds 0,1,2 --out analysis/models/replay
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np


def _write_extxyz(samples: list, path: Path) -> None:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for s in samples:
        a = s.atoms.copy()
        a.calc = SinglePointCalculator(a, energy=s.energy, forces=s.forces)
        frames.append(a)
    write(path, frames, format="extxyz")


def _row(table: dict) -> dict:
    a = table["all"]
    return {
        "energy_mae_mev_atom": a["energy_mae_mev_atom"],
        "force_mae_ev_a": a["force_mae_ev_a"],
        "n": a["n"],
    }


def _fine_tune(args: argparse.Namespace, work: Path, variant: str, seed: int, tests: dict) -> dict:
    """One fine-tuning run; its errors on both test sets (``tests``: "new", "old" samples)."""
    from mlipflows.models.checkpoint import load_model
    from mlipflows.training.config import DatasetSpec
    from mlipflows.training.metrics import errors
    from mlipflows.training.replay import FineTuneConfig, fine_tune

    config = FineTuneConfig(
        name=f"replay-{variant}-{seed}",
        architecture=tests["architecture"],
        checkpoint=args.base,
        new_head="pyxtal",
        datasets=[DatasetSpec(path=work / "si8-train.extxyz", head="pyxtal", validation_fraction=0.1)],
        replay_data=[DatasetSpec(path=args.old_train)],
        replay_size=0 if variant == "none" else args.replay,
        replay_selection="fps" if variant == "fps" else "random",
        replay_weight=args.replay_weight,
        loss={"energy": 100.0, "forces": 1.0, "stress": 0.0},
        epochs=args.epochs,
        max_time_s=args.max_time,
        patience=args.epochs,
        lr=1e-3,
        warmup_steps=10,
        seed=seed,
        output=work / f"ft-{variant}-{seed}.pt",
    )
    ft = fine_tune(config, show_progress=False)
    model, content = load_model(config.output)
    return {
        "replay_size": len(ft.replay),
        "epochs_run": len(ft.train.history),
        "train_seconds": content["metadata"]["train_seconds"],
        "new_head_on_si8_test": _row(errors(model, tests["new"])),
        "old_head_on_mlearn_test": _row(errors(model, tests["old"])),
    }


def _stat(per_seed: dict, fn) -> dict:
    """``fn`` (mean or std) over seeds of every error of the runs."""
    runs = list(per_seed.values())
    return {
        table: {
            key: float(fn([r[table][key] for r in runs])) for key in ("energy_mae_mev_atom", "force_mae_ev_a")
        }
        for table in ("new_head_on_si8_test", "old_head_on_mlearn_test")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="our checkpoint trained on mlearn Si")
    parser.add_argument("--new", type=Path, default=Path("../shared/data/pyxtal-si-polymorphs/Si8.json.gz"))
    parser.add_argument("--old-train", type=Path, default=Path("../shared/data/mlearn/Si_training.json.gz"))
    parser.add_argument("--old-test", type=Path, default=Path("../shared/data/mlearn/Si_test.json.gz"))
    parser.add_argument(
        "--max-energy",
        type=float,
        default=-4.0,
        help="drop Si8 structures above this energy, eV/atom (PyXtal_FF's Si_train uses -4)",
    )
    parser.add_argument("--n-new", type=int, default=200, help="Si8 structures to fine-tune on")
    parser.add_argument("--n-new-test", type=int, default=200, help="held-out Si8 structures")
    parser.add_argument("--replay", type=int, default=40, help="replay set size")
    parser.add_argument("--replay-weight", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--max-time", type=float, default=600.0, help="seconds per fine-tuning run")
    parser.add_argument("--variants", default="none,random,fps", help="comma list of none/random/fps")
    parser.add_argument(
        "--seeds", default="0", help="comma list of training seeds (replay pick, split, batch order)"
    )
    parser.add_argument("--out", type=Path, default=Path("analysis/models/replay"), help="results.json here")
    parser.add_argument("--work", type=Path, default=None, help="checkpoints and data (default: a temp dir)")
    args = parser.parse_args()

    import torch

    from mlipflows.models.checkpoint import load_model
    from mlipflows.training.data import Sample, read_dataset
    from mlipflows.training.metrics import errors
    from mlipflows.training.pyxtal_ff import read_pyxtal_ff

    torch.set_num_threads(1)
    for path in (args.base, args.new, args.old_train, args.old_test):
        if not path.exists():
            sys.exit(f"missing input {path}: pass it explicitly (see --help)")
    args.out.mkdir(parents=True, exist_ok=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="replay-"))
    work.mkdir(parents=True, exist_ok=True)
    new_all = [s for s in read_pyxtal_ff(args.new, head="pyxtal") if s.energy / s.n_atoms <= args.max_energy]
    order = np.random.default_rng(0).permutation(len(new_all))
    new_train = [new_all[k] for k in order[: args.n_new]]
    new_test = [new_all[k] for k in order[args.n_new : args.n_new + args.n_new_test]]
    _write_extxyz(new_train, work / "si8-train.extxyz")
    base, _ = load_model(args.base)
    old_head = base.heads[0]
    old_test = read_dataset(args.old_test, head=old_head)
    # before: the old head on its own test set, and (zero-shot) on the new data
    as_old = [Sample(s.atoms, s.energy, s.forces, head=old_head) for s in new_test]
    results: dict = {
        "base": str(args.base),
        "before": {
            "old_head_on_mlearn_test": _row(errors(base, old_test)),
            "old_head_on_si8_test": _row(errors(base, as_old)),
        },
        "seeds": [int(x) for x in args.seeds.split(",")],
        "runs": {},
    }
    tests = {"architecture": base.architecture, "new": new_test, "old": old_test}
    for variant in args.variants.split(","):
        per_seed = {}
        for seed in results["seeds"]:
            per_seed[str(seed)] = _fine_tune(args, work, variant, seed, tests)
            print(variant, seed, json.dumps(per_seed[str(seed)]), flush=True)
        results["runs"][variant] = {
            "seeds": per_seed,
            "mean": _stat(per_seed, np.mean),
            "std": _stat(per_seed, np.std),
        }
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
