"""Surrogate campaigns: a fast student screens every candidate; the teacher decides what matters.

The campaign's ``model`` is the teacher. With a ``surrogate:`` block the relax + hull part of
the campaign becomes six stages (each with its own settings digest, each resumable):

1. ``label``: the teacher relaxes ``budget`` candidates chosen by farthest-point sampling over
   composition and structure descriptors (:func:`descriptors`), and every reference; it also
   labels each chosen candidate's starting geometry and an 8-step frame of its relaxation
   (``label-frames``), so the student sees forces far from equilibrium.
2. ``finetune``: the base student gets a head for the campaign, trained on those labels with
   multi-head replay of the base pool the way MACE selects it (element filter, then per-element
   farthest-point fill); early stopping watches new and replayed validation data together;
   forgetting is measured on the base pool's held-out multi-element set. A
   ``calibration_fraction`` of the chosen candidates is never trained on.
3. ``screen``: the fine-tuned student relaxes every candidate and reference;
4. ``screen-hull``: the student's own hull.
5. ``check``: the margin is the ``margin_quantile`` of |E_student − E_teacher| per atom of the
   calibration candidates (each relaxed by its own model), at least ``min_margin``. The
   teacher re-relaxes, from the student's geometry, every candidate whose student
   ``e_above_hull`` ≤ threshold + margin, and every candidate the student failed on.
6. ``hull``: the campaign's hull, from teacher energies for everything the teacher relaxed
   (references included) and student energies for the rest; each document says which model
   decided it (``decided_by``, ``model``) and keeps the student's own ``e_above_hull``.

Funnel stages after it select from ``hull`` as in any campaign.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from jobflow import Flow, Job, JobOrder
from monty.json import MSONable
from pymatgen.core import Element, Structure

from mlipflows.io import Candidate
from mlipflows.makers.base import ChunkSettings, settings_digest

FRAME_STEPS = 8
# above this share of candidates re-relaxed by the teacher the check alone costs about half a
# teacher-only campaign; with labelling and fine-tuning on top the surrogate saves little or nothing
COSTLY_CHECK = 0.5


# ---- choosing what the teacher labels ---------------------------------------------------------


def _structure_features(s: Structure) -> list[float]:
    """Coordination and packing of a structure, independent of its elements and cell choice."""
    neighbors = s.get_neighbor_list(6.0)
    centre, dist = neighbors[0], neighbors[3]
    nearest = np.full(len(s), 6.0)
    np.minimum.at(nearest, centre, dist)
    counts = np.zeros(len(s))
    np.add.at(counts, centre, dist < 1.2 * nearest[centre])
    volume = s.volume / len(s)
    return [
        float(np.mean(counts)),
        float(np.std(counts)),
        float(np.log(volume / np.mean(nearest) ** 3)),
        float(np.log(len(s) / s.composition.get_reduced_composition_and_factor()[1])),
    ]


def descriptors(structures: Sequence[Structure]) -> np.ndarray:
    """(N, F) composition + structure descriptors for farthest-point sampling.

    Composition: the fraction of each element of the campaign, and the mean and spread of
    electronegativity, row, group and atomic radius. Structure: mean and spread of the first-
    shell coordination, packing (volume per atom over the nearest-neighbour distance cubed) and
    atoms per formula unit. Each column is standardised, then each block scaled so that the
    three blocks weigh the same in Euclidean distance.
    """
    elements = sorted({el.symbol for s in structures for el in s.composition.elements})
    col = {el: k for k, el in enumerate(elements)}
    props = {el: _element_props(el) for el in elements}
    rows = []
    for s in structures:
        comp = s.composition.fractional_composition
        fractions = np.zeros(len(elements))
        for el, x in comp.items():
            fractions[col[el.symbol]] = x
        p = np.array([props[el.symbol] for el in comp.elements])
        w = np.array([comp[el] for el in comp.elements])
        mean = w @ p
        spread = np.sqrt(w @ (p - mean) ** 2)
        rows.append([*fractions, *mean, *spread, *_structure_features(s)])
    x = np.asarray(rows, dtype=float)
    spread = x.std(0)
    x = (x - x.mean(0)) / np.where(spread > 0, spread, 1.0)
    n_el = len(elements)
    # equal weight per block: each standardised column counts 1, so divide by √(its columns)
    x[:, :n_el] /= np.sqrt(max(n_el, 1))
    x[:, n_el : n_el + 8] /= np.sqrt(8)
    x[:, n_el + 8 :] /= np.sqrt(4)
    return x


def _element_props(symbol: str) -> list[float]:
    el = Element(symbol)
    x = el.X if el.X == el.X else 1.5  # noble gases: no Pauling value
    radius = float(el.atomic_radius or 1.5)
    return [float(x), float(el.row), float(el.group), radius]


def choose_budget(candidates: Sequence[Candidate], k: int, seed: int) -> list[int]:
    """Indices of ``k`` candidates spread over composition and structure: farthest-point
    sampling on :func:`descriptors`, which first takes, element by element, the candidate
    farthest from those already chosen among the ones holding that element, so that every
    element of the campaign is labelled at least once (plain FPS favours the extremes)."""
    z = descriptors([c.structure for c in candidates])
    k = min(k, len(candidates))
    holders: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        for el in c.structure.composition.elements:
            holders.setdefault(el.symbol, []).append(i)
    dist = np.full(len(candidates), np.inf)
    chosen: list[int] = []

    def take(i: int) -> None:
        chosen.append(i)
        np.minimum(dist, np.linalg.norm(z - z[i], axis=1), out=dist)

    take(int(np.random.default_rng(seed).integers(len(candidates))))
    for el in sorted(holders):
        if len(chosen) >= k or any(i in holders[el] for i in chosen):
            continue
        take(max(holders[el], key=lambda i: dist[i]))
    while len(chosen) < k:
        take(int(np.argmax(dist)))
    return sorted(chosen)


def is_calibration(structure_id: str, fraction: float) -> bool:
    """Held out of fine-tuning (stable across runs: a hash of the id, not Python's salted one)."""
    return hashlib.sha1(structure_id.encode()).digest()[0] < 256 * fraction


# ---- the plan ------------------------------------------------------------------------------------


@dataclass
class SurrogatePlan(MSONable):
    """What the surrogate stages need at run time (serialised into the flow)."""

    campaign: str
    teacher: str
    student: str
    device: str
    settings: dict[str, Any]
    relax: dict[str, Any]
    digests: dict[str, str]
    hull_mode: str
    reference_entries: list[dict] = field(default_factory=list)
    chunk_size: int = 128
    budget_ids: list[str] = field(default_factory=list)
    home: str = ""

    def chunk(self, stage: str, model: str, tags: Sequence[str]) -> ChunkSettings:
        return ChunkSettings(
            model=model,
            device=self.device,
            campaign=self.campaign,
            tags=list(tags),
            stage=stage,
            settings_digest=self.digests[stage],
        )

    @property
    def checkpoint(self) -> Path:
        """Where the fine-tuned student is written (and found again on resume)."""
        return Path(self.home) / "students" / f"{self.campaign}-{self.digests['finetune']}.pt"

    @property
    def checkpoint_name(self) -> str:
        return str(self.checkpoint)


def surrogate_digests(spec: Any, teacher_checksum: str, student_checksum: str, relax: dict) -> dict[str, str]:
    s = spec.surrogate.model_dump()
    label = settings_digest("label", relax, s["budget"], s["seed"], teacher_checksum)
    finetune_keys = ("calibration_fraction", "replay_size", "epochs", "max_time_s", "lr", "seed")
    finetune = settings_digest("finetune", {k: s[k] for k in finetune_keys}, student_checksum, label)
    screen = settings_digest("screen", relax, finetune)
    screen_hull = settings_digest("screen-hull", spec.hull.mode, screen)
    margin_keys = ("threshold", "margin", "margin_quantile", "min_margin")
    check = settings_digest("check", relax, {k: s[k] for k in margin_keys}, teacher_checksum, screen_hull)
    return {
        "label": label,
        "label-frames": label,
        "finetune": finetune,
        "screen": screen,
        "screen-hull": screen_hull,
        "check": check,
    }


def surrogate_flow(
    plan: SurrogatePlan,
    candidates: Sequence[Candidate],
    bulk_refs: Sequence[Candidate],
    dimer_refs: Sequence[Candidate],
    store: Any,
    hull_digest: str,
    retry_failed: bool = False,
) -> tuple[Flow, int]:
    """The six surrogate stages as one linear flow; and how many teacher/student relaxations
    it starts with (the check stage adds its own when it runs)."""
    from mlipflows.campaign.run import _stored_ids
    from mlipflows.campaign.surrogate_jobs import check_job, final_hull_job, finetune_job, screen_hull_job
    from mlipflows.engine import RelaxSettings
    from mlipflows.makers import RelaxMaker, StaticMaker
    from mlipflows.makers.campaign import CANDIDATE_TAG, REFERENCE_TAG
    from mlipflows.makers.relax import chunk_jobs

    relax = RelaxSettings(**plan.relax)
    by_id = {c.structure_id: c for c in candidates}
    chosen = [by_id[s] for s in plan.budget_ids]
    parts: list[Flow | Job] = []
    n_todo = 0

    def relax_jobs(stage: str, model: str, items: Sequence[Candidate], tag: str, cell_filter: str) -> None:
        nonlocal n_todo
        done = _stored_ids(store, plan.campaign, plan.digests[stage], retry_failed, stage)
        todo = [c for c in items if c.structure_id not in done]
        if not todo:
            return
        n_todo += len(todo)
        settings = RelaxSettings(**{**plan.relax, "cell_filter": cell_filter})
        maker = RelaxMaker(
            name=f"{stage} {plan.campaign}", chunk=plan.chunk(stage, model, [tag]), relax=settings
        )
        ids = [c.structure_id for c in todo]
        parts.extend(chunk_jobs([c.structure for c in todo], ids, plan.chunk_size, maker))

    # the teacher: the budget, every reference, and each chosen candidate's start and frame
    relax_jobs("label", plan.teacher, chosen, CANDIDATE_TAG, relax.cell_filter)
    relax_jobs("label", plan.teacher, bulk_refs, REFERENCE_TAG, relax.cell_filter)
    relax_jobs("label", plan.teacher, dimer_refs, REFERENCE_TAG, "fixed")
    done = _stored_ids(store, plan.campaign, plan.digests["label-frames"], retry_failed, "label-frames")
    starts = [c for c in chosen if f"{c.structure_id}~0" not in done]
    frames = [c for c in chosen if f"{c.structure_id}~{FRAME_STEPS}" not in done]
    chunk = plan.chunk("label-frames", plan.teacher, ["label-frame"])
    static = StaticMaker(name=f"label starts {plan.campaign}", chunk=chunk)
    ids = [f"{c.structure_id}~0" for c in starts]
    parts.extend(chunk_jobs([c.structure for c in starts], ids, plan.chunk_size, static))
    short = RelaxMaker(
        name=f"label frames {plan.campaign}",
        chunk=chunk,
        relax=RelaxSettings(**{**plan.relax, "max_steps": FRAME_STEPS}),
    )
    ids = [f"{c.structure_id}~{FRAME_STEPS}" for c in frames]
    parts.extend(chunk_jobs([c.structure for c in frames], ids, plan.chunk_size, short))
    n_todo += len(starts) + len(frames)
    tuned = finetune_job(plan)
    tuned.name = f"fine-tune student {plan.campaign}"
    parts.append(tuned)
    # the student: every candidate and reference
    relax_jobs("screen", plan.checkpoint_name, candidates, CANDIDATE_TAG, relax.cell_filter)
    relax_jobs("screen", plan.checkpoint_name, bulk_refs, REFERENCE_TAG, relax.cell_filter)
    relax_jobs("screen", plan.checkpoint_name, dimer_refs, REFERENCE_TAG, "fixed")
    screen_hull = screen_hull_job(plan)
    screen_hull.name = f"student hull {plan.campaign}"
    check = check_job(plan)
    check.name = f"teacher check {plan.campaign}"
    final = final_hull_job(plan, hull_digest)
    final.name = f"hull {plan.campaign}"
    parts += [screen_hull, check, final]
    flow = Flow(parts, order=JobOrder.LINEAR, output=final.output, name=f"surrogate {plan.campaign}")
    return flow, n_todo


def plan_surrogate(
    spec: Any,
    store: Any,
    candidates: Sequence[Candidate],
    bulk_refs: Sequence[Candidate],
    dimer_refs: Sequence[Candidate],
    teacher: Any,
    reference_entries: list[dict],
    digests: dict[str, str],
    retry_failed: bool = False,
) -> tuple[Flow, int]:
    """The surrogate part of a campaign's flow (see :func:`surrogate_flow`)."""
    from mlipflows.home import mlipflows_home
    from mlipflows.potentials import load_potential

    s = spec.surrogate
    relax = spec.relax.model_dump()
    student = load_potential(s.student, device=spec.device)
    supported = [
        c
        for c in candidates
        if not teacher.unsupported_elements({el.symbol for el in c.structure.composition.elements})
    ]
    budget = [
        supported[k].structure_id for k in choose_budget(supported, min(s.budget, len(supported)), s.seed)
    ]
    plan = SurrogatePlan(
        campaign=spec.name,
        teacher=spec.model,
        student=s.student,
        device=spec.device,
        settings=s.model_dump(),
        relax=relax,
        digests=surrogate_digests(spec, teacher.card.checksum, student.card.checksum, relax),
        hull_mode=spec.hull.mode,
        reference_entries=reference_entries,
        chunk_size=spec.chunk_size,
        budget_ids=budget,
        home=str(mlipflows_home()),
    )
    return surrogate_flow(plan, candidates, bulk_refs, dimer_refs, store, digests["hull"], retry_failed)
