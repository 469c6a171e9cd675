"""The same campaign twice: teacher only, and with a surrogate student; recall, error and time.

Reads a campaign spec with a ``surrogate:`` block. ``--phase teacher`` runs it without the
block (campaign ``<name>-teacher``: the teacher relaxes every candidate and reference);
``--phase surrogate`` runs it as written; ``--phase report`` compares the two hulls and writes
the metrics JSON. ``--phase all`` does the three in order. Each phase is resumable (a stored
result is reused) and its time is added up over its runs in ``<work>/<name>-timing.json``:
wall seconds and this process's CPU seconds (the fair measure on a shared machine; with one
torch thread they equal the wall time of an idle machine).

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/surrogate_campaign.py \\
        workflows/surrogate-binaries.yaml --work /tmp/surrogate --phase all \\
        --out analysis/surrogate/binaries.json

The two halves may run at once in two work folders (one process per embedded store): give
the report the teacher's folder with ``--teacher-work``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

warnings.filterwarnings("ignore")


def cpu_seconds() -> float:
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


class Timing:
    """Wall and CPU seconds per named part, summed over resumed runs, kept in a JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, dict[str, float]] = json.loads(path.read_text()) if path.is_file() else {}

    def add(self, part: str, wall: float, cpu: float, started: datetime) -> None:
        entry = self.data.setdefault(
            part, {"wall_s": 0.0, "cpu_s": 0.0, "runs": 0, "started_at": started.isoformat()}
        )
        entry["wall_s"] += wall
        entry["cpu_s"] += cpu
        entry["runs"] += 1
        self.path.write_text(json.dumps(self.data, indent=2))


def teacher_spec(spec_path: Path, work: Path) -> Path:
    """The spec without its ``surrogate:`` block, as campaign ``<name>-teacher``."""
    data = yaml.safe_load(spec_path.read_text())
    data.pop("surrogate", None)
    data["name"] = f"{data['name']}-teacher"
    out = work / f"{data['name']}.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def run_campaign(path: Path, timing: Timing, part: str) -> dict[str, Any]:
    """Plan and run one campaign spec in this process; returns the plan's counts."""
    from jobflow import run_locally

    from mlipflows.campaign import load_spec
    from mlipflows.campaign.run import plan_campaign
    from mlipflows.store import get_job_store

    spec = load_spec(path)
    store = get_job_store()
    started, t0, c0 = datetime.now(UTC), time.perf_counter(), cpu_seconds()
    plan = plan_campaign(spec, store)
    if plan.n_to_relax or spec.surrogate is not None:
        run_locally(plan.flow, store=store, log=False, ensure_success=True)
    timing.add(part, time.perf_counter() - t0, cpu_seconds() - c0, started)
    return {"candidates": len(plan.candidates), "relaxed_now": plan.n_to_relax, "skipped": plan.n_skipped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path)
    parser.add_argument("--work", type=Path, required=True, help="MLIPFLOWS_HOME of both runs")
    parser.add_argument("--phase", choices=["teacher", "surrogate", "report", "all"], default="all")
    parser.add_argument("--out", type=Path, default=None, help="metrics JSON")
    parser.add_argument(
        "--teacher-work",
        type=Path,
        default=None,
        help="report: the teacher-only half ran with this --work (so both halves can run at once)",
    )
    args = parser.parse_args()
    if args.teacher_work is not None and args.phase in ("teacher", "all"):
        parser.error("--teacher-work names the teacher half's own --work; it is for --phase report")
    args.work.mkdir(parents=True, exist_ok=True)
    os.environ["MLIPFLOWS_HOME"] = str(args.work)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    name = yaml.safe_load(args.spec.read_text())["name"]
    timing = Timing(args.work / f"{name}-timing.json")
    if args.phase in ("teacher", "all"):
        print("teacher only:", run_campaign(teacher_spec(args.spec, args.work), timing, "teacher"))
    if args.phase in ("surrogate", "all"):
        print("surrogate:", run_campaign(args.spec, timing, "surrogate"))
    if args.phase in ("report", "all"):
        from surrogate_report import report  # benchmarks/ is on sys.path when run as a script

        report(name, timing, args.out, args.teacher_work)


if __name__ == "__main__":
    main()
