"""Run a campaign locally: spec → candidates → flow → run_locally, resuming where it stopped."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, JobOrder, JobStore

from mlipflows.campaign.candidates import generate_candidates
from mlipflows.campaign.references import fetch_mp_entries, load_reference_entries
from mlipflows.campaign.spec import CampaignSpec, SpecError
from mlipflows.elements import elemental_references
from mlipflows.io import Candidate, read_structures
from mlipflows.makers.base import ChunkSettings, settings_digest
from mlipflows.makers.campaign import CANDIDATE_TAG, HullMaker, campaign_flow
from mlipflows.makers.relax import RelaxMaker
from mlipflows.potentials import Potential, load_potential
from mlipflows.store import RESULTS

log = logging.getLogger(__name__)


@dataclass
class CampaignPlan:
    """What a run will do: the flow, and how many structures it relaxes or skips."""

    spec: CampaignSpec
    flow: Flow
    candidates: list[Candidate]
    n_to_relax: int
    n_skipped: int
    unsupported: dict[str, str]
    unreadable: dict[str, str] = field(default_factory=dict)
    n_relax_chunks: int = 0
    digests: dict[str, str] = field(default_factory=dict)  # every stage's settings digest


def _stored_ids(
    store: JobStore, campaign: str, digest: str, retry_failed: bool, stage: str = "relax"
) -> set[str]:
    """Structures whose ``stage`` result is stored for these settings (failed ones too, unless
    retried)."""
    from mlipflows.campaign.funnel import stage_docs

    results = store.additional_stores[RESULTS]
    results.connect()
    docs = stage_docs(results, campaign, stage, digest)
    return {d["structure_id"] for d in docs if not (retry_failed and d.get("state") == "failed")}


def plan_campaign(
    spec: CampaignSpec,
    store: JobStore,
    retry_failed: bool = False,
    strict: bool = False,
    until: str | None = None,
    record: bool = True,
) -> CampaignPlan:
    """Everything that can go wrong before compute goes wrong here, with a clear message.

    Files that cannot be read are stored at once as failed candidates with the reader's
    message (``strict``: they stop the campaign instead; ``record=False``, a dry run: they
    are only listed). ``until`` names the last stage to run ("relax", "hull" or a funnel stage).
    """
    pool = generate_candidates(spec, strict)
    candidates = pool.candidates
    potential = load_potential(spec.model, device=spec.device)
    unsupported = {}
    for c in candidates:
        missing = potential.unsupported_elements({el.symbol for el in c.structure.composition.elements})
        if missing:
            unsupported[c.structure_id] = f"element {', '.join(missing)} not supported by {potential.name}"
    elements = {el.symbol for c in candidates for el in c.structure.composition.elements}
    bulk_refs: list[Candidate] = []
    dimer_refs: list[Candidate] = []
    reference_entries: list[dict] = []
    if spec.hull.mode == "mlip":
        bulk_refs, dimer_refs = elemental_references(elements)
        for k, f in enumerate(spec.hull.references):
            try:
                for item in read_structures(spec.resolve(f)):
                    bulk_refs.append(Candidate(f"ref-{item.structure_id}", item.structure, f))
            except Exception as exc:
                raise SpecError(f"hull.references.{k}: {exc}") from None
    else:
        if spec.hull.reference_entries:
            entries = load_reference_entries(spec.resolve(spec.hull.reference_entries))
        else:
            entries = fetch_mp_entries(elements)
        reference_entries = [e.as_dict() for e in entries]

    relax = RelaxMaker(relax=spec.relax.settings())
    digests = stage_digests(spec, potential.card.checksum, relax.recorded_settings())
    done = _stored_ids(store, spec.name, digests["relax"], retry_failed)
    todo = [c for c in candidates if c.structure_id not in done]
    refs_todo = [c for c in bulk_refs if c.structure_id not in done]
    dimers_todo = [c for c in dimer_refs if c.structure_id not in done]
    chunk = ChunkSettings(
        model=spec.model,
        device=spec.device,
        campaign=spec.name,
        stage="relax",
        settings_digest=digests["relax"],
    )
    if pool.unreadable and record:
        record_unreadable(store, pool.unreadable, chunk, potential, relax.recorded_settings())
    hull = HullMaker(
        campaign=spec.name,
        model_checksum=potential.card.checksum,
        mode=spec.hull.mode,
        reference_entries=reference_entries,
        relax_digest=digests["relax"],
        digest=digests["hull"],
    )
    stages = stage_jobs(spec, digests, retry_failed, until, reference_entries)
    n_all = len(candidates) + len(bulk_refs) + len(dimer_refs)
    if spec.surrogate is not None:
        from mlipflows.campaign.surrogate import plan_surrogate

        flow, n_todo = plan_surrogate(
            spec,
            store,
            candidates,
            bulk_refs,
            dimer_refs,
            potential,
            reference_entries,
            digests,
            retry_failed,
        )
        if stages:
            flow = Flow([flow, *stages], order=JobOrder.LINEAR, output=flow.output, name=flow.name)
        return CampaignPlan(spec, flow, candidates, n_todo, 0, unsupported, pool.unreadable, 0, digests)
    flow = campaign_flow(spec.name, todo, refs_todo, dimers_todo, chunk, relax, hull, spec.chunk_size, stages)
    n_todo = len(todo) + len(refs_todo) + len(dimers_todo)
    n_chunks = sum(math.ceil(len(x) / spec.chunk_size) for x in (todo, refs_todo, dimers_todo))
    return CampaignPlan(
        spec, flow, candidates, n_todo, n_all - n_todo, unsupported, pool.unreadable, n_chunks, digests
    )


def stage_digests(spec: CampaignSpec, checksum: str, relax_settings: dict[str, Any]) -> dict[str, str]:
    """Settings digest of every stage: its kind, settings, model checksum and its source's digest.

    A changed stage changes its own digest and, through the chain, every later stage's: those
    rerun, the earlier ones are reused.
    """
    digests = {"relax": settings_digest("relax", relax_settings, checksum)}
    if spec.surrogate is not None:  # the hull's energies come from the surrogate stages
        digests["relax"] = settings_digest("relax", relax_settings, checksum, spec.surrogate.model_dump())
    digests["hull"] = settings_digest("hull", spec.hull.mode, digests["relax"])
    for k, stage in enumerate(spec.stages):
        model = stage.model or spec.model
        stage_checksum = load_potential(model, device=spec.device).card.checksum
        source = digests[spec.stage_source(k)]
        digests[stage.name] = settings_digest(stage.kind, stage.settings, stage_checksum, source)
    return digests


def stage_kinds(spec: CampaignSpec) -> dict[str, str]:
    return {"relax": "relax", "hull": "hull", **{s.name: s.kind for s in spec.stages}}


def stage_jobs(
    spec: CampaignSpec,
    digests: dict[str, str],
    retry_failed: bool = False,
    until: str | None = None,
    reference_entries: list[dict] | None = None,
) -> list[Job]:
    """One small job per funnel stage; each expands into its chunk jobs when it runs."""
    from mlipflows.campaign.funnel import StagePlan, run_stage

    names = ["relax", "hull", *(s.name for s in spec.stages)]
    if until is not None and until not in names:
        raise SpecError(f"--until {until!r}: no such stage; the stages are {', '.join(names)}")
    last = names.index(until) if until else len(names) - 1
    jobs = []
    for k, stage in enumerate(spec.stages[: max(0, last - 1)]):
        plan = StagePlan(
            campaign=spec.name,
            stage=stage.name,
            kind=stage.kind,
            settings=stage.settings,
            model=stage.model or spec.model,
            device=spec.device,
            source=spec.stage_source(k),
            digests={name: digests[name] for name in names[: k + 3]},
            kinds=stage_kinds(spec),
            select=stage.select.model_dump(exclude={"source"}),
            chunk_size=stage.chunk_size,
            max_failed_fraction=stage.max_failed_fraction,
            retry_failed=retry_failed,
            hull={"mode": spec.hull.mode, "reference_entries": reference_entries or []}
            if stage.kind == "polymorphs"
            else {},
        )
        j = run_stage(plan)
        j.name = f"stage {stage.name}"
        jobs.append(j)
    return jobs


def record_unreadable(
    store: JobStore, unreadable: dict[str, str], chunk: ChunkSettings, potential: Potential, settings: dict
) -> None:
    """One failed relax document per unreadable file, with the reader's message.

    Its uuid is the one a readable file of the same name would get, so fixing the file and
    running again (``--retry-failed``) replaces the failure.
    """
    from datetime import UTC, datetime

    from mlipflows.makers.base import result_uuid
    from mlipflows.schemas import ModelInfo
    from mlipflows.store import write_results

    identity = {**settings, "_stage": [chunk.stage, chunk.settings_digest]}
    rows = []
    for path, reason in unreadable.items():
        sid = unreadable_id(path)
        rows.append(
            {
                "uuid": result_uuid(chunk.campaign, sid, "relax", potential.card.checksum, identity),
                "structure_id": sid,
                "campaign": chunk.campaign,
                "stage": chunk.stage,
                "settings_digest": chunk.settings_digest,
                "tags": [CANDIDATE_TAG],
                "task_type": "relax",
                "formula_pretty": "",
                "formula_reduced": "",
                "composition": {},
                "chemsys": "",
                "elements": [],
                "nsites": 0,
                "model": ModelInfo.from_card(potential.card).model_dump(),
                "device": str(potential.device),
                "settings": settings,
                "state": "failed",
                "error": f"unreadable input: {reason}",
                "source": path,
                "structure": {},
                "created_at": datetime.now(UTC).isoformat(),
            }
        )
    results = store.additional_stores[RESULTS]
    results.connect()
    write_results(store, rows)


def unreadable_id(key: str) -> str:
    """The id a readable file (``x.cif`` → ``x``) or frame (``set.extxyz frame 3`` → ``set-3``)
    of this name gets, so that fixing the input and ``--retry-failed`` replace the failure."""
    import re
    from pathlib import Path

    from mlipflows.io import file_id

    frame = re.fullmatch(r"(.*) frame (\d+)", key)
    return f"{file_id(Path(frame[1]))}-{frame[2]}" if frame else file_id(Path(key))
