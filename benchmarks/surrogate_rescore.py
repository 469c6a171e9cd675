"""Would teacher single points at the student's geometries narrow the surrogate's margin?

After a side-by-side run (``surrogate_campaign.py``), the teacher evaluates, once, every
geometry the student relaxed to in the screen; each candidate's ``e_above_hull`` is then
estimated as its teacher-only value plus E_static − E_relaxed (per atom, both the teacher's).
Printed: the cost of the statics, the spread of E_static − E_relaxed, and the share of
candidates the best limit on that estimate would send to the teacher at recall 0.9/0.95/0.98
of the teacher's near-hull set (``best_margins``), next to the same for the student's own hull.

    OMP_NUM_THREADS=1 python benchmarks/surrogate_rescore.py surrogate-binaries \\
        --work /work/sur2b --teacher-work /work/surrogate --out rescore.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="campaign name (the surrogate half)")
    parser.add_argument("--work", type=Path, required=True, help="the surrogate half's work folder")
    parser.add_argument(
        "--teacher-work", type=Path, default=None, help="the teacher half's (default: --work)"
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ["MLIPFLOWS_HOME"] = str(args.work)
    import torch
    from pymatgen.core import Structure
    from surrogate_campaign import cpu_seconds
    from surrogate_report import _docs, _results_store, best_margins

    from mlipflows.engine.static import static
    from mlipflows.potentials import load_potential

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    results = _results_store(None)
    teacher_results = _results_store(args.teacher_work) if args.teacher_work else results
    teacher_hull = _docs(teacher_results, f"{args.name}-teacher", "hull", "stability")
    student_hull = _docs(results, args.name, "screen-hull", "stability")
    screen = _docs(results, args.name, "screen", "relax")
    labelled = set(_docs(results, args.name, "label", "relax"))
    truth = {
        s: d["e_above_hull"]
        for s, d in teacher_hull.items()
        if d["state"] == "successful"
        and d.get("e_above_hull") is not None
        and d.get("energy_per_atom") is not None
    }
    ids = [s for s in truth if screen.get(s, {}).get("state") == "successful"]
    if not ids:
        raise SystemExit(f"{args.name}: no candidate relaxed by both the student and the teacher")
    structures = [Structure.from_dict(screen[s]["structure"]) for s in ids]
    teacher = load_potential(teacher_hull[ids[0]]["model"]["name"])
    t0, c0 = time.perf_counter(), cpu_seconds()
    res = static(structures, teacher, compute_stress=False)
    cpu, wall = cpu_seconds() - c0, time.perf_counter() - t0
    delta = {
        s: r.energy / len(st) - teacher_hull[s]["energy_per_atom"]
        for s, r, st in zip(ids, res, structures, strict=True)
        if r.ok
    }
    d = np.array(list(delta.values()))
    # a candidate whose static failed counts as one the student failed on: always checked
    estimate = {s: truth[s] + delta[s] if s in delta else None for s in truth}
    own = {s: student_hull.get(s, {}).get("e_above_hull") for s in truth}
    out = {
        "campaign": args.name,
        "estimate": "teacher-only e_above_hull + (E_static - E_relaxed) per atom; the hull is not "
        "rebuilt, so a reference's own static error is not propagated",
        "n_statics": len(structures),
        "n_statics_failed": len(structures) - len(delta),
        "statics_cpu_s": cpu,
        "statics_wall_s": wall,
        "static_minus_relaxed_ev_atom": {
            "median": float(np.median(d)),
            "mae": float(np.mean(np.abs(d))),
            **{f"q{int(q * 100)}": float(np.quantile(d, q)) for q in (0.05, 0.5, 0.9, 0.95, 0.98)},
        },
        "best_margins_teacher_static": best_margins(estimate, truth, labelled),
        "best_margins_student_hull": best_margins(own, truth, labelled),
    }
    print(json.dumps(out, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
