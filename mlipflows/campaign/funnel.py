"""Funnel stages at run time: select survivors from the store, freeze a manifest, expand.

A stage is one small job in the campaign flow. When it runs (after its source stage has
finished), it reads the stored results of the earlier stages, keeps the structures that
succeeded and passed their stage's physics gate, applies the stage's ``where`` /
``order_by`` / ``max``, and stores a **manifest** (the query, the settings digest, the model
checksum, the selected ids, the time). Structures already stored for the same stage and
digest are skipped. Then it replaces itself (jobflow ``Response(replace=...)``) with one job
per chunk of the rest, plus a check job that records the stage's counts and stops the
campaign when more than ``max_failed_fraction`` of its structures failed. The number of jobs
grows with the number of chunks, never with structures or displacements, and a stage with
no survivors records 0 and lets the campaign complete.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jobflow import CURRENT_JOB, Flow, Job, JobConfig, JobOrder, Response, job
from monty.json import MSONable
from pymatgen.core import Structure

from mlipflows.campaign.stages import CampaignStage, Selected, stage_class
from mlipflows.errors import MlipflowsError, short_reason
from mlipflows.makers.base import ChunkSettings, result_uuid
from mlipflows.progress import report_stage
from mlipflows.results import parse_where
from mlipflows.store import RESULTS, write_results

MANIFEST = "manifest"
# the two stages every campaign starts with, and the task types of their documents
BASE_STAGES = {"relax": "relax", "hull": "stability"}


class StageFailedError(MlipflowsError):
    """A stage's failure fraction passed its ``max_failed_fraction``: the campaign stops."""


@dataclass
class StagePlan(MSONable):
    """Everything a stage job needs at run time (serialised into the flow / firework).

    Attributes:
        campaign / stage / kind / settings: what runs.
        model / device: the stage's model (its checksum is inside ``digest``).
        source: the stage it selects from; ``digests``: the settings digest of every stage up
            to this one (the results of the current settings are found by it).
        kinds: the kind of every earlier stage (for their gates).
        select: the selection (``where``, ``order_by``, ``max``).
        chunk_size / max_failed_fraction / retry_failed: how it runs.
        hull: the campaign's hull mode and DFT reference entries (stages that rebuild it).
    """

    campaign: str
    stage: str
    kind: str
    settings: dict[str, Any]
    model: str
    device: str
    source: str
    digests: dict[str, str]
    kinds: dict[str, str]
    select: dict[str, Any] = field(default_factory=dict)
    chunk_size: int | None = None
    max_failed_fraction: float = 0.5
    retry_failed: bool = False
    hull: dict[str, Any] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return self.digests[self.stage]

    def chunk(self) -> ChunkSettings:
        return ChunkSettings(
            model=self.model,
            device=self.device,
            campaign=self.campaign,
            tags=[self.stage],
            stage=self.stage,
            settings_digest=self.digest,
        )


def stage_docs(
    results: Any, campaign: str, stage: str, digest: str, task_type: str | None = None
) -> list[dict[str, Any]]:
    """The flat documents of one stage under its current settings (one query for every caller).

    ``task_type`` keeps the stage's own results (a polymorph stage also stores its rankings
    and their relaxations); None keeps everything but the manifest.
    """
    crit: dict[str, Any] = {"campaign": campaign, "stage": stage, "settings_digest": digest}
    crit["task_type"] = task_type if task_type is not None else {"$ne": MANIFEST}
    return list(results.query(crit, properties={"_id": 0}))


def task_type_of(kind: str) -> str:
    """The task type of a stage kind's own results (the base stages: relax, stability)."""
    if kind in BASE_STAGES:
        return BASE_STAGES[kind]
    return stage_class(kind).task_type


def gate_of(kind: str) -> Callable[[dict[str, Any]], str | None]:
    """The physics gate of a stage kind (the base relax and hull stages have none)."""
    from mlipflows.campaign.stages import STAGE_KINDS

    return stage_class(kind).gate if kind in STAGE_KINDS else (lambda doc: None)


def survivors(results: Any, plan: StagePlan) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Rows of the structures that may enter ``plan.stage``: successful and through the gate of
    the source stage, with every earlier stage's fields as ``STAGE.field``; and why the others
    did not (counts)."""
    by_stage = {
        name: {
            d["structure_id"]: d
            for d in stage_docs(results, plan.campaign, name, digest, task_type_of(plan.kinds[name]))
        }
        for name, digest in plan.digests.items()
        if name != plan.stage
    }
    source = by_stage.get(plan.source, {})
    gate = gate_of(plan.kinds[plan.source])
    rows, stopped = [], Counter()
    for sid, doc in source.items():
        if doc.get("state") != "successful":
            stopped[doc.get("state", "failed")] += 1
            continue
        reason = gate(doc)
        if reason:
            stopped[reason] += 1
            continue
        row = dict(_flatten(doc))
        for name, docs in by_stage.items():
            other = docs.get(sid)
            if other is not None:
                row.update({f"{name}.{k}": v for k, v in _flatten(other)})
        rows.append(row)
    return rows, dict(stopped)


def _flatten(doc: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        if key == "structure" and not prefix:
            out.append((key, value))
        elif isinstance(value, dict):
            out.append((prefix + key, value))
            out.extend(_flatten(value, f"{prefix}{key}."))
        else:
            out.append((prefix + key, value))
    return out


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$eq": operator.eq,
    "$ne": operator.ne,
}


def apply_selection(
    rows: list[dict[str, Any]], select: dict[str, Any], stage: str = "?"
) -> list[dict[str, Any]]:
    """``where`` (all clauses must hold; a missing field fails), then ``order_by`` and ``max``.

    Raises:
        SpecError: ``where`` or ``order_by`` names a field that none of the rows has (a typo
            would otherwise select nothing, and every later stage would report "done").
    """
    kept = rows
    if select.get("where"):
        crit = parse_where(select["where"])
        _check_fields(rows, list(crit), stage, "where")

        def holds(row: dict[str, Any]) -> bool:
            for name, conds in crit.items():
                if name not in row:
                    return False
                value = row[name]
                for op, target in conds.items():
                    try:
                        if value is None or not _COMPARE[op](value, target):
                            return False
                    except TypeError:
                        return False
            return True

        kept = [r for r in kept if holds(r)]
    key = select.get("order_by")
    if key:
        descending = key.startswith("-")
        key = key.lstrip("-")
        _check_fields(rows, [key], stage, "order_by")

        def value(row: dict[str, Any]) -> float:
            v = row.get(key)
            if isinstance(v, int | float) and not (isinstance(v, float) and math.isnan(v)):
                return -v if descending else v
            return math.inf

        kept = sorted(kept, key=value)
    if select.get("max") is not None:
        kept = kept[: select["max"]]
    return kept


def _check_fields(rows: list[dict[str, Any]], names: list[str], stage: str, what: str) -> None:
    """Every field ``names`` is in at least one row (nothing to check without rows)."""
    if not rows:
        return
    present = set().union(*(r.keys() for r in rows))
    for name in names:
        if name not in present:
            from difflib import get_close_matches

            from mlipflows.campaign.spec import SpecError

            near = get_close_matches(name, sorted(present), n=3)
            hint = f"; did you mean {' or '.join(near)}?" if near else ""
            raise SpecError(
                f"stages.{stage}.select.{what}: no selected document has the field {name!r}{hint} "
                "(mlipflows results --campaign NAME --format json lists the fields)"
            )


def _needs_run(doc: dict[str, Any] | None, redo: set[str]) -> bool:
    return doc is None or doc.get("state") in redo


def manifest_uuid(campaign: str, stage: str, digest: str) -> str:
    return result_uuid(campaign, f"stage:{stage}", MANIFEST, digest, {})


PLANNED = "planned"  # the state of a declared stage's manifest until the stage first runs


def record_planned_stages(store: Any, spec: Any, digests: dict[str, str]) -> None:
    """A ``planned`` manifest for each declared stage that has none yet, so ``campaign status``
    lists the whole funnel (a stage cut by ``--until`` or not reached yet included).

    A stage that has run keeps its manifests (a changed spec does not hide its stored results
    before it reruns); planned manifests of stages no longer in the spec are removed.
    """
    results = store.additional_stores[RESULTS]
    results.connect()
    manifests = list(results.query({"campaign": spec.name, "task_type": MANIFEST}, ["stage", "state"]))
    have = {d["stage"] for d in manifests}
    ran = {d["stage"] for d in manifests if d.get("state") != PLANNED}
    declared = {s.name for s in spec.stages}
    # a planned manifest goes once its stage has run (under any settings) or left the spec
    planned = {d["stage"] for d in manifests if d.get("state") == PLANNED}
    gone = sorted((planned - declared) | (planned & ran))
    if gone:
        results.remove_docs(
            {"campaign": spec.name, "task_type": MANIFEST, "state": PLANNED, "stage": {"$in": gone}}
        )
    now = datetime.now(UTC).isoformat()
    docs = [
        {
            "uuid": manifest_uuid(spec.name, s.name, digests[s.name]),
            "structure_id": f"stage:{s.name}",
            "campaign": spec.name,
            "stage": s.name,
            "task_type": MANIFEST,
            "kind": s.kind,
            "source": spec.stage_source(k),
            "query": s.select.model_dump(exclude={"source"}),
            "settings": s.settings,
            "settings_digest": digests[s.name],
            "model": {"name": s.model or spec.model},
            "state": PLANNED,
            "position": k + 2,  # after relax and hull
            "created_at": now,
        }
        for k, s in enumerate(spec.stages)
        if s.name not in have
    ]
    if docs:
        write_results(store, docs)


@job(config=JobConfig(expose_store=True))
def run_stage(plan: StagePlan) -> Response:
    """Select, write the manifest, and replace this job with the stage's chunk jobs + a check."""
    store = CURRENT_JOB.store
    if store is None:
        raise RuntimeError("a stage job needs a JobStore (run it with jobflow)")
    results = store.additional_stores[RESULTS]
    results.connect()
    candidates, stopped = survivors(results, plan)
    chosen = apply_selection(candidates, plan.select, plan.stage)
    own = task_type_of(plan.kind)
    stored = {d["structure_id"]: d for d in stage_docs(results, plan.campaign, plan.stage, plan.digest, own)}
    redo = {"failed"} if plan.retry_failed else set()
    todo = [
        r for r in chosen if r["structure_id"] not in stored or stored[r["structure_id"]]["state"] in redo
    ]
    stage: CampaignStage = stage_class(plan.kind)(plan.settings)
    uuid = manifest_uuid(plan.campaign, plan.stage, plan.digest)
    previous = next(iter(results.query({"uuid": uuid}, properties={"_id": 0})), {})
    if previous.get("state") == PLANNED:  # declared, never run: no earlier run to keep
        previous = {}
    now = datetime.now(UTC).isoformat()
    # a resumed stage keeps the history of its earlier runs, so its time is not lost
    runs = [*previous.get("runs", []), {"started_at": now, "n_to_run": len(todo)}]
    manifest = {
        "uuid": uuid,
        "structure_id": f"stage:{plan.stage}",
        "campaign": plan.campaign,
        "stage": plan.stage,
        "task_type": MANIFEST,
        "position": list(plan.digests).index(plan.stage),  # its place in the funnel, for status
        "kind": plan.kind,
        "source": plan.source,
        "query": plan.select,
        "settings": plan.settings,
        "settings_digest": plan.digest,
        "model": {"name": plan.model},
        "n_source": len(candidates) + sum(stopped.values()),
        "stopped_at_source": stopped,
        "n_candidates": len(candidates),
        "n_selected": len(chosen),
        "selected_ids": [r["structure_id"] for r in chosen],
        "n_reused": len(chosen) - len(todo),
        "n_to_run": len(todo),
        "state": "running",
        "created_at": now,
        "first_created_at": previous.get("first_created_at", previous.get("created_at", now)),
        "runs": runs,
    }
    write_results(store, [manifest])
    selected = [Selected(r["structure_id"], Structure.from_dict(r["structure"]), r) for r in todo]
    size = plan.chunk_size or stage.default_chunk_size
    chunk_jobs = stage.jobs(selected, plan.chunk(), size) if selected else []
    if chunk_jobs:  # the manifest says how the stage expanded
        write_results(store, [{**manifest, "n_chunks": len(chunk_jobs), "chunk_size": size}])
    report_stage(plan.stage, len(selected), len(chunk_jobs))
    context = {"plan": plan, "selected_ids": manifest["selected_ids"]}
    check = check_stage(plan, manifest["selected_ids"])
    check.name = f"check {plan.stage}"
    tail: list[Job | Flow] = [*stage.after(context), check]
    if chunk_jobs:
        inner = Flow([Flow(chunk_jobs, name=f"{plan.stage} chunks"), *tail], order=JobOrder.LINEAR)
    else:
        inner = Flow(tail, order=JobOrder.LINEAR)
    inner.name = f"stage {plan.stage}"
    return Response(replace=inner)


@job(config=JobConfig(expose_store=True))
def check_stage(plan: StagePlan, selected_ids: list[str]) -> dict[str, Any]:
    """Count the stage's results; stop the campaign when too many of them failed."""
    store = CURRENT_JOB.store
    results = store.additional_stores[RESULTS]
    results.connect()
    own = task_type_of(plan.kind)
    docs = {d["structure_id"]: d for d in stage_docs(results, plan.campaign, plan.stage, plan.digest, own)}
    mine = [docs[s] for s in selected_ids if s in docs]
    states = Counter(d.get("state", "failed") for d in mine)
    gate = gate_of(plan.kind)
    passed = sum(1 for d in mine if d.get("state") == "successful" and not gate(d))
    bad = [d for d in mine if d.get("state") != "successful"]
    reasons = Counter(short_reason(d.get("error")) for d in bad).most_common(5)
    counts = {
        "n_selected": len(selected_ids),
        "n_done": len(mine),
        "n_successful": states.get("successful", 0),
        "n_failed": states.get("failed", 0),
        "n_unphysical": states.get("unphysical", 0),
        "n_passed": passed,
        "failure_reasons": [[r, n] for r, n in reasons],
    }
    fraction = len(bad) / len(selected_ids) if selected_ids else 0.0
    failed_stage = fraction > plan.max_failed_fraction
    uuid = manifest_uuid(plan.campaign, plan.stage, plan.digest)
    existing = next(iter(results.query({"uuid": uuid}, properties={"_id": 0})), {})
    now = datetime.now(UTC).isoformat()
    runs = [dict(r) for r in existing.get("runs", [])]
    if runs:
        runs[-1]["finished_at"] = now
    update = {
        "uuid": uuid,
        **counts,
        "state": "stopped" if failed_stage else "done",
        "finished_at": now,
        "runs": runs,
        "work_s": stage_work_seconds(runs),
    }
    write_results(store, [{**existing, **update}])
    if failed_stage:
        commonest = "; ".join(f"{n} × {r}" for r, n in reasons)
        raise StageFailedError(
            f"stage {plan.stage!r} ({plan.kind}): {len(bad)} of {len(selected_ids)} structures failed "
            f"({fraction:.0%} > max_failed_fraction {plan.max_failed_fraction:.0%}); commonest: "
            f"{commonest}. Fix the cause (or raise max_failed_fraction) and run the campaign again: "
            "finished work is kept"
        )
    return counts


def stage_work_seconds(runs: list[dict[str, Any]]) -> float | None:
    """Wall seconds of a stage's runs that had work to do (finished ones); None if none did."""
    spans = [
        (datetime.fromisoformat(r["finished_at"]) - datetime.fromisoformat(r["started_at"])).total_seconds()
        for r in runs
        if r.get("n_to_run") and r.get("finished_at")
    ]
    return sum(spans) if spans else None
