"""A 5,000-candidate, four-stage funnel: jobs per stage and where the wall time goes.

relax + hull over every candidate, then four stages on the survivors of the one before:
static (e_above_hull < 0.2) → eos (the 500 lowest) → tight relax (200) → elastic (50).
For each stage it prints the structures, the chunk jobs (= fireworks on FireWorks; plus one
job for the stage itself and one check), the wall time from the stage's manifest, the time
inside the engine, and the rest (selection, manifests, documents, stores, jobflow) per
structure and as a share of the stage. Target: orchestration < 5 % of the wall time with
SevenNet-0.

    python benchmarks/funnel_scale.py [--n 5000] [--model sevennet-0] [--chunk-size 500]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

warnings.filterwarnings("ignore")
sys.path.insert(0, str(Path(__file__).parent))

from campaign_scale import AB_SITES_A, AB_SITES_B  # noqa: E402

STAGES = """\
stages:
  - name: static
    kind: static
    select: {{where: "e_above_hull < 0.2"}}
  - name: eos
    kind: eos
    select: {{order_by: hull.e_above_hull, max: {n_eos}}}
  - name: tight
    kind: relax
    select: {{order_by: hull.e_above_hull, max: {n_tight}}}
    settings: {{fmax: 0.01, symmetrize: true}}
  - name: elastic
    kind: elastic
    select: {{order_by: hull.e_above_hull, max: {n_elastic}}}
"""


def spec_text(n: int, model: str, chunk_size: int, n_eos: int, n_tight: int, n_elastic: int) -> str:
    prototypes = ["rocksalt", "cscl", "zincblende", "wurtzite", "nias", "fluorite", "rutile", "perovskite"]
    a, b = AB_SITES_A, AB_SITES_B
    lines = [
        "name: funnel-scale",
        f"model: {model}",
        f"chunk_size: {chunk_size}",
        "max_candidates: 100000",
        "relax: {fmax: 0.05, max_steps: 300}",
        "candidates:",
        "  prototypes:",
    ]
    count = 0
    for proto in prototypes:
        if count >= n:
            break
        if proto == "perovskite":
            sites = f"{{A: [{', '.join(a[:10])}], B: [{', '.join(a[10:])}], X: [O, F, S]}}"
        else:
            sites = f"{{A: [{', '.join(a)}], B: [{', '.join(b)}]}}"
        lines += [f"    - prototype: {proto}", f"      sites: {sites}"]
        count += len(a) * len(b)
    lines.append("hull: {mode: mlip}")
    return "\n".join(lines) + "\n" + STAGES.format(n_eos=n_eos, n_tight=n_tight, n_elastic=n_elastic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="about this many candidates")
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--chunk-size", type=int, default=500)
    parser.add_argument("--n-eos", type=int, default=500)
    parser.add_argument("--n-tight", type=int, default=200)
    parser.add_argument("--n-elastic", type=int, default=50)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="funnel-scale-")
    os.environ.setdefault("MLIPFLOWS_HOME", home)

    from jobflow import run_locally

    from mlipflows.campaign import load_spec
    from mlipflows.campaign.candidates import generate_candidates
    from mlipflows.campaign.run import plan_campaign
    from mlipflows.progress import reset_timings, timings
    from mlipflows.results import query_results
    from mlipflows.store import ensure_indexes, get_job_store

    path = Path(home) / "funnel-scale.yaml"
    path.write_text(spec_text(args.n, args.model, args.chunk_size, args.n_eos, args.n_tight, args.n_elastic))
    spec = load_spec(path)
    n_cand = len(generate_candidates(spec).candidates)
    store = get_job_store()
    ensure_indexes(store)
    t0 = time.perf_counter()
    plan = plan_campaign(spec, store)
    t_plan = time.perf_counter() - t0
    reset_timings()
    t0 = time.perf_counter()
    run_locally(plan.flow, store=store, log=False, ensure_success=True)
    t_run = time.perf_counter() - t0
    tm = timings()
    manifests = query_results(store, {"campaign": "funnel-scale", "task_type": "manifest"})

    print(f"{n_cand} candidates with {args.model}, chunks of {args.chunk_size}; plan {t_plan:.1f} s")
    print(f"run_locally wall time {t_run:.1f} s; engine {tm.get('engine', 0):.1f} s")
    head = f"{'stage':10s} {'structures':>10s} {'chunk jobs':>10s} {'jobs':>5s} {'wall s':>8s}"
    print(head + f" {'engine s':>9s} {'other s':>8s} {'ms/structure':>12s} {'other %':>8s}")
    base_engine = tm.get("engine:relax", 0.0)
    stage_wall = 0.0
    rows = []
    for m in manifests.sort_values("created_at").to_dict("records"):
        start = datetime.fromisoformat(m["created_at"])
        end = datetime.fromisoformat(m["finished_at"])
        wall = (end - start).total_seconds()
        engine = tm.get(f"engine:{m['stage']}", 0.0)
        n = int(m["n_selected"])
        chunks = int(m.get("n_chunks") or 0)
        rows.append((m["stage"], n, chunks, chunks + 2, wall, engine))
        stage_wall += wall
    base_wall = t_run - stage_wall
    n_relax = plan.n_to_relax
    rows.insert(
        0, ("relax+hull", n_relax, plan.n_relax_chunks, plan.n_relax_chunks + 1, base_wall, base_engine)
    )
    total_other = 0.0
    for stage, n, chunks, jobs, wall, engine in rows:
        other = wall - engine
        total_other += other
        per = 1000 * other / max(n, 1)
        share = 100 * other / wall if wall else 0.0
        print(
            f"{stage:10s} {n:10d} {chunks:10d} {jobs:5d} {wall:8.1f} {engine:9.1f} "
            f"{other:8.1f} {per:12.2f} {share:7.1f}%"
        )
    print(
        f"orchestration (everything but the engine): {total_other:.1f} s = "
        f"{100 * total_other / t_run:.1f} % of the run (target < 5 %)"
    )


if __name__ == "__main__":
    main()
