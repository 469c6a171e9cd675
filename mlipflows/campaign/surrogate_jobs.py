"""The jobs of a surrogate campaign that are not chunk relaxations (see :mod:`.surrogate`)."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import CURRENT_JOB, Flow, JobConfig, Response, job

from mlipflows.campaign.surrogate import COSTLY_CHECK, SurrogatePlan, is_calibration
from mlipflows.store import RESULTS, write_results

log = logging.getLogger(__name__)

NEW_HEAD = "campaign"
SUMMARY = "surrogate"


def _results(store: Any) -> Any:
    results = store.additional_stores[RESULTS]
    results.connect()
    return results


def _docs(
    store: Any, plan: SurrogatePlan, stage: str, task_type: str, digest: str | None = None
) -> dict[str, dict]:
    from mlipflows.campaign.funnel import stage_docs

    docs = stage_docs(_results(store), plan.campaign, stage, digest or plan.digests[stage], task_type)
    return {d["structure_id"]: d for d in docs}


def _summary(store: Any, plan: SurrogatePlan, stage: str) -> dict | None:
    found = _docs(store, plan, stage, SUMMARY)
    return next(iter(found.values()), None)


def _write_summary(store: Any, plan: SurrogatePlan, stage: str, fields: dict[str, Any]) -> dict:
    doc = {
        "uuid": f"{plan.campaign}:{stage}:{plan.digests[stage]}",
        "structure_id": f"{stage}-summary",
        "campaign": plan.campaign,
        "stage": stage,
        "settings_digest": plan.digests[stage],
        "task_type": SUMMARY,
        "state": "successful",
        "created_at": datetime.now(UTC).isoformat(),
        **fields,
    }
    write_results(store, [doc])
    return doc


def student_files(student: str) -> tuple[Path, Path | None, Path | None]:
    """(checkpoint, replay pool, held-out set) of a base student: a registry name of a packaged
    model or a checkpoint path; the data files sit next to it as ``<stem>-replay.extxyz.gz`` and
    ``<stem>-heldout.extxyz.gz`` (absent: no replay / no forgetting check)."""
    from mlipflows.models.checkpoint import PACKAGED

    path = Path(student).expanduser()
    if not path.is_file():
        path = PACKAGED / f"{student}.pt"
    replay = path.with_name(f"{path.stem}-replay.extxyz.gz")
    heldout = path.with_name(f"{path.stem}-heldout.extxyz.gz")
    return path, replay if replay.is_file() else None, heldout if heldout.is_file() else None


@job(config=JobConfig(expose_store=True))
def finetune_job(plan: SurrogatePlan) -> dict[str, Any]:
    """Fine-tune the base student on the teacher's labels (see the module of :mod:`.surrogate`)."""
    store = CURRENT_JOB.store
    done = _summary(store, plan, "finetune")
    if done is not None and plan.checkpoint.is_file():
        return done
    return _write_summary(store, plan, "finetune", fine_tune_student(plan, store))


def fine_tune_student(plan: SurrogatePlan, store: Any) -> dict[str, Any]:

    from mlipflows.models.checkpoint import load_model
    from mlipflows.potentials import load_potential
    from mlipflows.training.config import DatasetSpec
    from mlipflows.training.data import read_extxyz, write_extxyz
    from mlipflows.training.distill import teacher_isolated_energies
    from mlipflows.training.metrics import errors
    from mlipflows.training.replay import FineTuneConfig, extract_head, fine_tune
    from mlipflows.training.store_data import stage_samples

    s = plan.settings
    stages = {"label": plan.digests["label"], "label-frames": plan.digests["label-frames"]}
    samples = stage_samples(store, plan.campaign, stages, head=NEW_HEAD)
    calibration = {sid for sid in plan.budget_ids if is_calibration(sid, s["calibration_fraction"])}
    train = [x for x in samples if x.tag.split("~")[0] not in calibration]
    if not train:
        raise ValueError(f"{plan.campaign}: no teacher labels to fine-tune on (the label stage stored none)")
    base_path, replay_path, heldout_path = student_files(plan.student)
    base, content = load_model(base_path)
    source = base.heads[0]
    labels = write_extxyz(train, plan.checkpoint.with_name(f"{plan.checkpoint.stem}-labels.extxyz.gz"))
    same_teacher = content["metadata"].get("teacher") == plan.teacher
    e0 = None
    if not same_teacher:  # another level of theory: the new head's E0 are this teacher's atoms
        elements = sorted({sym for x in train for sym in x.atoms.get_chemical_symbols()})
        e0 = {NEW_HEAD: teacher_isolated_energies(load_potential(plan.teacher, device=plan.device), elements)}
    config = FineTuneConfig(
        name=f"{plan.campaign}-student",
        checkpoint=base_path,
        new_head=NEW_HEAD,
        source_head=source,
        datasets=[DatasetSpec(path=labels, head=NEW_HEAD, validation_fraction=0.1)],
        replay_data=[DatasetSpec(path=replay_path, head=source)] if replay_path else [],
        replay_size=s["replay_size"] if replay_path else 0,
        replay_selection="mace",
        replay_validation_fraction=0.1,
        e0=e0,
        refit_baseline=not same_teacher,  # same teacher: keep the base head's E0 and scale
        loss=content["training"].get("loss", {}),
        epochs=s["epochs"],
        max_time_s=s["max_time_s"],
        lr=s["lr"],
        patience=8,
        warmup_steps=10,
        batch_size=8,
        seed=s["seed"],
        threads=None,
        output=plan.checkpoint.with_name(f"{plan.checkpoint.stem}-heads.pt"),
        single_head_output=plan.checkpoint,
    )
    t0 = time.perf_counter()
    result = fine_tune(config, show_progress=False)
    seconds = time.perf_counter() - t0
    forgetting: dict[str, Any] = {}
    if heldout_path is not None:
        held = read_extxyz(heldout_path, head=source)
        tuned, _ = load_model(result.train.checkpoint)
        before = errors(base, held)["all"]
        after = errors(extract_head(tuned, NEW_HEAD), [_rehead(x) for x in held])["all"]
        forgetting = {"heldout": str(heldout_path.name), "before": before, "after": after}
    return {
        "checkpoint": str(plan.checkpoint),
        "base_student": str(base_path),
        "n_labels": len(samples),
        "n_train_labels": len(train),
        "n_calibration_candidates": len(calibration),
        "n_replay": len(result.replay) + len(result.replay_validation),
        "n_replay_validation": len(result.replay_validation),
        "epochs_run": len(result.train.history),
        "stopped": result.train.stopped,
        "validation": result.train.validation.get("all", {}),
        "train_seconds": seconds,
        "forgetting": forgetting,
    }


def _rehead(sample: Any) -> Any:
    from dataclasses import replace

    return replace(sample, head=NEW_HEAD)


@job(config=JobConfig(expose_store=True))
def screen_hull_job(plan: SurrogatePlan) -> dict[str, Any]:
    """The student's own hull over its relaxations (stage ``screen-hull``)."""
    from mlipflows.makers.campaign import build_stability

    store = CURRENT_JOB.store
    docs = list(_docs(store, plan, "screen", "relax").values())
    out = build_stability(
        docs,
        plan.campaign,
        plan.hull_mode,
        plan.reference_entries,
        store,
        plan.digests["screen-hull"],
        "screen-hull",
    )
    out.pop("phase_diagrams", None)
    return out


def calibration_errors(plan: SurrogatePlan, label: dict[str, dict], screen: dict[str, dict]) -> list[float]:
    """E_student − E_teacher (eV/atom) of the calibration candidates, each relaxed by its model."""
    out = []
    for sid in plan.budget_ids:
        t, s = label.get(sid), screen.get(sid)
        if not is_calibration(sid, plan.settings["calibration_fraction"]) or t is None or s is None:
            continue
        if t["state"] == "successful" and s["state"] == "successful":
            out.append(float(s["energy_per_atom"]) - float(t["energy_per_atom"]))
    return out


@job(config=JobConfig(expose_store=True))
def check_job(plan: SurrogatePlan) -> Response:
    """The margin, then the teacher's re-relaxation of everything within it (stage ``check``)."""
    from pymatgen.core import Structure

    from mlipflows.engine import RelaxSettings
    from mlipflows.makers import RelaxMaker
    from mlipflows.makers.campaign import CANDIDATE_TAG
    from mlipflows.makers.relax import chunk_jobs

    store = CURRENT_JOB.store
    s = plan.settings
    label = _docs(store, plan, "label", "relax")
    screen = _docs(store, plan, "screen", "relax")
    student_hull = _docs(store, plan, "screen-hull", "stability")
    errs = calibration_errors(plan, label, screen)
    measured = float(np.quantile(np.abs(errs), s["margin_quantile"])) if errs else None
    if s["margin"] is not None:
        margin = float(s["margin"])
    elif measured is not None:
        margin = max(s["min_margin"], measured)
    else:
        margin = max(s["min_margin"], 0.1)
        log.warning("%s: no calibration candidates; margin %.3f eV/atom", plan.campaign, margin)
    limit = s["threshold"] + margin
    wanted = []
    for sid, doc in student_hull.items():
        if CANDIDATE_TAG not in doc.get("tags", []) or sid in label:
            continue
        e = doc.get("e_above_hull")
        if doc["state"] != "successful" or e is None or e <= limit:
            wanted.append(sid)
    n_candidates = sum(1 for d in student_hull.values() if CANDIDATE_TAG in d.get("tags", []))
    if n_candidates and len(wanted) > COSTLY_CHECK * n_candidates:
        log.warning(
            "%s: a margin of %.3f eV/atom sends %d of %d candidates to the teacher; the student is "
            "too far from the teacher on this chemistry for the surrogate to save time",
            plan.campaign,
            margin,
            len(wanted),
            n_candidates,
        )
    done = set(_docs(store, plan, "check", "relax"))
    todo = sorted(set(wanted) - done)
    summary = _write_summary(
        store,
        plan,
        "check",
        {
            "margin": margin,
            "measured_margin": measured,
            "threshold": s["threshold"],
            "n_calibration": len(errs),
            "calibration_mae": float(np.mean(np.abs(errs))) if errs else None,
            "calibration_errors": errs,
            "n_candidates": n_candidates,
            "n_checked": len(wanted),
            "n_labelled": len(plan.budget_ids),
        },
    )
    if not todo:
        return Response(output=summary)
    relax = RelaxSettings(**plan.relax)
    maker = RelaxMaker(
        name=f"check {plan.campaign}", chunk=plan.chunk("check", plan.teacher, [CANDIDATE_TAG]), relax=relax
    )
    structures = [Structure.from_dict(screen[sid]["structure"]) for sid in todo]
    jobs = chunk_jobs(structures, todo, plan.chunk_size, maker)
    return Response(output=summary, replace=Flow(jobs, name=f"teacher check {plan.campaign}"))


@job(data=["phase_diagrams"], config=JobConfig(expose_store=True))
def final_hull_job(plan: SurrogatePlan, hull_digest: str) -> dict[str, Any]:
    """The campaign's hull (stage ``hull``): teacher energies wherever the teacher relaxed."""
    from mlipflows.makers.campaign import CANDIDATE_TAG, build_stability
    from mlipflows.schemas import StabilityDocument

    store = CURRENT_JOB.store
    label = _docs(store, plan, "label", "relax")
    check = _docs(store, plan, "check", "relax")
    screen = _docs(store, plan, "screen", "relax")
    student_hull = _docs(store, plan, "screen-hull", "stability")
    teacher_sum = next(iter(label.values()))["model"]["checksum"] if label else None
    chosen = {sid: d for sid, d in screen.items() if CANDIDATE_TAG in d.get("tags", [])}
    chosen.update({sid: d for sid, d in label.items() if CANDIDATE_TAG in d.get("tags", [])})
    chosen.update(check)
    references = [d for d in label.values() if CANDIDATE_TAG not in d.get("tags", [])]

    def annotate(doc: StabilityDocument) -> None:
        doc.decided_by = "teacher" if doc.model.checksum == teacher_sum else "student"
        mine = student_hull.get(doc.structure_id)
        doc.student_e_above_hull = None if mine is None else mine.get("e_above_hull")
        relaxed = screen.get(doc.structure_id)
        doc.student_energy_per_atom = None if relaxed is None else relaxed.get("energy_per_atom")

    out = build_stability(
        [*chosen.values(), *references],
        plan.campaign,
        plan.hull_mode,
        plan.reference_entries,
        store,
        hull_digest,
        "hull",
        annotate,
    )
    teacher = sum(1 for d in chosen.values() if d["model"]["checksum"] == teacher_sum)
    out["n_decided_by_teacher"] = teacher
    out["n_decided_by_student"] = len(chosen) - teacher
    return out
