"""A shipped student against its teacher: held-out errors per element, speed, hull ranking.

1. Energy / force / stress errors against the teacher on the base pool's held-out split,
   overall and per element (from the checkpoint; recomputed with ``--recompute``).
2. Atom-steps/s (energy + forces, one structure per call) of student and teacher on rattled
   rocksalt NaCl and a WBM-like ternary at 64–512 atoms.
3. Hull ranking on a held-out campaign: the student alone relaxes the candidates of a campaign
   spec the teacher already ran (``<name>-teacher`` in the same store, e.g. from
   ``surrogate_campaign.py --phase teacher``); Spearman and Kendall of e_above_hull with the
   teacher's, and the recall of the teacher's near-hull set (≤ 0.05 eV/atom) by the student's.

    OMP_NUM_THREADS=1 python benchmarks/student_accuracy.py mpnice-sevennet-0 \\
        --campaign workflows/surrogate-binaries.yaml --work /work/surrogate \\
        --out analysis/models/mpnice-sevennet-0.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import yaml

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))


def speed(student: str, teacher: str) -> dict[str, Any]:
    from model_speed import atom_steps_per_second
    from pymatgen.core import Lattice, Structure

    from mlipflows.potentials import load_potential

    cells = {
        "NaCl": Structure.from_spacegroup(
            "Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]
        ),
        "SrTiO3": Structure.from_spacegroup(
            "Pm-3m", Lattice.cubic(3.91), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
        ),
    }
    pots = {"student": load_potential(student), "teacher": load_potential(teacher)}
    out: dict[str, Any] = {}
    for name, cell in cells.items():
        for n in (64, 128, 256, 512):
            reps = round((n / len(cell)) ** (1 / 3))
            s = cell.copy()
            s.make_supercell([reps, reps, max(1, round(n / len(cell) / reps**2))])
            s.perturb(0.05)
            rates = {k: atom_steps_per_second(p, s, repeats=3) for k, p in pots.items()}
            out[f"{name}-{len(s)}"] = {**rates, "ratio": rates["student"] / rates["teacher"]}
            print(name, len(s), {k: round(v, 1) for k, v in out[f"{name}-{len(s)}"].items()}, flush=True)
    return out


def ranking(student: str, spec_path: Path) -> dict[str, Any]:
    """The student alone on a campaign the teacher ran; rank agreement of e_above_hull."""
    from jobflow import run_locally
    from scipy.stats import kendalltau, spearmanr

    from mlipflows.campaign import load_spec
    from mlipflows.campaign.run import plan_campaign
    from mlipflows.store import RESULTS, get_job_store

    data = yaml.safe_load(spec_path.read_text())
    data.pop("surrogate", None)
    teacher_name = f"{data['name']}-teacher"
    data["name"] = f"{data['name']}-student-only"
    data["model"] = student
    path = Path(os.environ["MLIPFLOWS_HOME"]) / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    store = get_job_store()
    plan = plan_campaign(load_spec(path), store)
    if plan.n_to_relax:
        run_locally(plan.flow, store=store, log=False, ensure_success=True)
    results = store.additional_stores[RESULTS]
    results.connect()

    def hull(name: str) -> dict[str, float]:
        docs = results.query(
            {"campaign": name, "stage": "hull", "task_type": "stability", "state": "successful"}
        )
        return {d["structure_id"]: d["e_above_hull"] for d in docs if d.get("e_above_hull") is not None}

    t, s = hull(teacher_name), hull(data["name"])
    ids = sorted(set(t) & set(s))
    x, y = [t[i] for i in ids], [s[i] for i in ids]
    near_t = {i for i in ids if t[i] <= 0.05}
    near_s = {i for i in ids if s[i] <= 0.05}
    return {
        "campaign": teacher_name,
        "n": len(ids),
        "spearman": float(spearmanr(x, y).statistic),
        "kendall": float(kendalltau(x, y).statistic),
        "mae_e_above_hull": float(sum(abs(a - b) for a, b in zip(x, y, strict=True)) / len(ids)),
        "teacher_near_hull": len(near_t),
        "recall_near_hull": len(near_t & near_s) / len(near_t) if near_t else None,
        "precision_near_hull": len(near_t & near_s) / len(near_s) if near_s else None,
    }


def element_table(heldout: dict[str, Any]) -> str:
    """Markdown: held-out errors per element, elements with too few structures marked."""
    lines = [
        "| element | structures | E MAE (meV/atom) | F MAE (eV/Å) | σ MAE (GPa) |",
        "|---|---:|---:|---:|---:|",
    ]
    for el, row in sorted(heldout["per_element"].items(), key=lambda kv: -kv[1]["energy_mae_mev_atom"]):
        mark = " (few)" if row["few"] else ""
        lines.append(
            f"| {el}{mark} | {row['n']} | {row['energy_mae_mev_atom']:.1f} | "
            f"{row['force_mae_ev_a']:.3f} | {row['stress_mae_gpa']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("student")
    parser.add_argument("--teacher", default="sevennet-0")
    parser.add_argument("--campaign", type=Path, default=None, help="spec the teacher already ran")
    parser.add_argument("--work", type=Path, default=None, help="MLIPFLOWS_HOME holding the teacher's run")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--table", type=Path, default=None, help="write the per-element table (markdown)")
    args = parser.parse_args()
    if args.work:
        os.environ["MLIPFLOWS_HOME"] = str(args.work)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    from mlipflows.potentials import load_potential

    pot = load_potential(args.student)
    meta = torch.load(pot.card.source, map_location="cpu", weights_only=True)["metadata"]
    numbers: dict[str, Any] = {
        "student": args.student,
        "teacher": args.teacher,
        "parameters": sum(p.numel() for p in pot.model.parameters()),
        "heldout": meta.get("heldout"),
        "training": {
            k: meta.get(k) for k in ("n_train", "n_validation", "best_epoch", "stopped", "train_seconds")
        },
        "speed": speed(args.student, args.teacher),
    }
    if args.table and numbers["heldout"]:
        args.table.write_text(element_table(numbers["heldout"]))
    if args.campaign is not None:
        numbers["ranking"] = ranking(args.student, args.campaign)
        print(json.dumps(numbers["ranking"], indent=2))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(numbers, indent=2))


if __name__ == "__main__":
    main()
