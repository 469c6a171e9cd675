"""Compare a surrogate campaign with its teacher-only twin (used by ``surrogate_campaign.py``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

NEAR = 0.05  # eV/atom: the near-hull set whose recall is the target


def _docs(results: Any, campaign: str, stage: str, task_type: str) -> dict[str, dict]:
    found = results.query(
        {"campaign": campaign, "stage": stage, "task_type": task_type}, properties={"_id": 0}
    )
    return {d["structure_id"]: d for d in found}


def _end(docs: dict[str, dict]) -> datetime | None:
    times = [datetime.fromisoformat(d["created_at"]) for d in docs.values() if d.get("created_at")]
    return max(times) if times else None


PARTS = {
    "labelling": [("label", "relax"), ("label-frames", "static"), ("label-frames", "relax")],
    "fine-tuning": [("finetune", "surrogate")],
    "student screen": [("screen", "relax"), ("screen-hull", "stability")],
    "teacher check": [("check", "surrogate"), ("check", "relax"), ("hull", "stability")],
}


def part_times(results: Any, name: str, start: datetime | None, total_wall: float | None) -> dict[str, float]:
    """Wall seconds of each part of the surrogate run, from its documents' creation times (the
    stages run one after another; each part ends with its last document, the first starts at
    ``start``). Runs timed before ``started_at`` was recorded have no start: their labelling is
    the total wall time less the other parts (so it includes the set-up)."""
    ends = {}
    for part, stages in PARTS.items():
        found = {}
        for stage, task_type in stages:
            found.update({f"{stage}/{k}": v for k, v in _docs(results, name, stage, task_type).items()})
        ends[part] = _end(found)
    out, previous = {}, start
    for part, end in ends.items():
        if end is not None and previous is not None:
            out[part] = (end - previous).total_seconds()
        previous = end or previous
    if start is None and total_wall is not None and ends["labelling"] is not None:
        out = {"labelling": total_wall - sum(out.values()), **out}
    return out


def best_margins(
    student: dict[str, float],
    teacher: dict[str, float],
    labelled: set[str] | frozenset[str] = frozenset(),
    recalls: tuple[float, ...] = (0.9, 0.95, 0.98),
) -> dict[str, dict[str, float]]:
    """What the best margin for this student would have done, known only after the teacher-only
    run: for each recall of the teacher's near-hull set, the smallest student ``e_above_hull``
    limit reaching it and the share of the unlabelled candidates the check would then re-relax.

    It follows the check's rule: labelled candidates are decided by the teacher before the check
    (their near-hull ones are found for free), a candidate the student failed on is always
    checked, and every other one is checked when its student value is within the limit. So no
    margin rule (measured, ensemble or fixed) sends fewer to the teacher at that recall with
    this student. ``student``: candidate → student value, None or absent when the student failed.
    """
    near = [s for s in teacher if teacher[s] <= NEAR]
    scored_near = sorted(student[s] for s in near if s not in labelled and student.get(s) is not None)
    free = sum(1 for s in near if s in labelled or student.get(s) is None)
    pool = [s for s in teacher if s not in labelled]
    failed = sum(1 for s in pool if student.get(s) is None)
    scored = np.array([student[s] for s in pool if student.get(s) is not None])
    out = {}
    for r in recalls:
        need = int(np.ceil(r * len(near) - 1e-9)) - free
        if not near or not pool or need > len(scored_near):
            continue
        limit = scored_near[need - 1] if need > 0 else -np.inf
        share = (int(np.sum(scored <= limit)) + failed) / len(pool)
        out[str(r)] = {"student_limit": float(limit), "margin": float(limit - NEAR), "share_checked": share}
    return out


def _results_store(home: Path | None) -> Any:
    """The ``results`` store of the embedded store under ``home`` (None: ``$MLIPFLOWS_HOME``)."""
    import os

    from mlipflows.store import RESULTS, get_job_store

    if home is not None and os.environ.get("MLIPFLOWS_STORE_URI"):
        raise SystemExit("--teacher-work reads an embedded store: unset MLIPFLOWS_STORE_URI")
    before = os.environ.get("MLIPFLOWS_HOME")
    if home is not None:
        os.environ["MLIPFLOWS_HOME"] = str(home)
    try:
        results = get_job_store().additional_stores[RESULTS]
    finally:
        if before is None:
            os.environ.pop("MLIPFLOWS_HOME", None)
        else:
            os.environ["MLIPFLOWS_HOME"] = before
    results.connect()
    return results


def report(name: str, timing: Any, out: Path | None, teacher_work: Path | None = None) -> dict[str, Any]:
    """Recall, error, steps and time of the surrogate run against its teacher-only twin.

    ``teacher_work``: the work folder of the teacher-only half when it ran apart (two
    processes at once must not share one embedded store); its timing file is read from there.
    """
    results = _results_store(None)
    teacher_results = results if teacher_work is None else _results_store(teacher_work)
    teacher = _docs(teacher_results, f"{name}-teacher", "hull", "stability")
    surrogate = _docs(results, name, "hull", "stability")
    both = [
        sid
        for sid in teacher
        if sid in surrogate
        and teacher[sid].get("e_above_hull") is not None
        and surrogate[sid].get("e_above_hull") is not None
    ]
    t_near = {sid for sid in both if teacher[sid]["e_above_hull"] <= NEAR}
    s_near = {sid for sid in both if surrogate[sid]["e_above_hull"] <= NEAR}
    hits = t_near & s_near
    diff = np.array([surrogate[s]["e_above_hull"] - teacher[s]["e_above_hull"] for s in both])
    student_diff = np.array(
        [
            surrogate[s]["student_e_above_hull"] - teacher[s]["e_above_hull"]
            for s in both
            if surrogate[s].get("student_e_above_hull") is not None
        ]
    )
    check = next(iter(_docs(results, name, "check", "surrogate").values()), {})
    tune = next(iter(_docs(results, name, "finetune", "surrogate").values()), {})
    checked = _docs(results, name, "check", "relax")
    teacher_relax = _docs(teacher_results, f"{name}-teacher", "relax", "relax")
    pairs = [(checked[s]["n_steps"], teacher_relax[s]["n_steps"]) for s in checked if s in teacher_relax]
    steps_check = sum(p[0] for p in pairs)
    steps_teacher = sum(p[1] for p in pairs)
    t = dict(timing.data)
    if teacher_work is not None:
        t["teacher"] = json.loads((teacher_work / f"{name}-timing.json").read_text())["teacher"]
    own = t.get("surrogate", {})
    started = datetime.fromisoformat(own["started_at"]) if "started_at" in own else None
    metrics: dict[str, Any] = {
        "campaign": name,
        "n_candidates": len(both),
        "teacher_near_hull": len(t_near),
        "surrogate_near_hull": len(s_near),
        "recall": len(hits) / len(t_near) if t_near else None,
        "precision": len(hits) / len(s_near) if s_near else None,
        "missed": sorted(t_near - s_near),
        "best_margins": best_margins(
            {s: surrogate[s].get("student_e_above_hull") for s in both},
            {s: teacher[s]["e_above_hull"] for s in both},
            labelled=set(_docs(results, name, "label", "relax")),
        ),
        "e_above_hull_mae": float(np.mean(np.abs(diff))) if len(diff) else None,
        "student_only_e_above_hull_mae": float(np.mean(np.abs(student_diff))) if len(student_diff) else None,
        "decided_by_teacher": sum(1 for s in both if surrogate[s].get("decided_by") == "teacher"),
        "margin": check.get("margin"),
        "measured_margin": check.get("measured_margin"),
        "n_labelled": check.get("n_labelled"),
        "n_checked": check.get("n_checked"),
        "finetune": {
            k: tune.get(k) for k in ("n_train_labels", "n_replay", "epochs_run", "validation", "forgetting")
        },
        "teacher_steps_checked_from_student": steps_check,
        "teacher_steps_same_from_scratch": steps_teacher,
        "teacher_steps_saved": 1 - steps_check / steps_teacher if steps_teacher else None,
        "parts_wall_s": part_times(
            results,
            name,
            started,
            own["wall_s"] if own.get("runs") == 1 else None,
        ),
        "timing": t,
    }
    if "teacher" in t and "surrogate" in t:
        metrics["speedup"] = t["teacher"]["cpu_s"] / t["surrogate"]["cpu_s"]
        metrics["speedup_wall"] = t["teacher"]["wall_s"] / t["surrogate"]["wall_s"]
    print(json.dumps({k: v for k, v in metrics.items() if k != "missed"}, indent=2))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=2))
    return metrics
