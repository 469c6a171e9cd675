"""Run a campaign locally: spec → candidates → flow → run_locally, resuming where it stopped."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from jobflow import Flow, JobStore

from mlipflows.campaign.candidates import generate_candidates
from mlipflows.campaign.references import fetch_mp_entries, load_reference_entries
from mlipflows.campaign.spec import CampaignSpec, SpecError
from mlipflows.elements import elemental_references
from mlipflows.io import Candidate, read_structures
from mlipflows.makers.base import ChunkSettings
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


def _stored_ids(store: JobStore, campaign: str, checksum: str, retry_failed: bool) -> set[str]:
    results = store.additional_stores[RESULTS]
    results.connect()
    crit = {"campaign": campaign, "model.checksum": checksum, "task_type": "relax"}
    if retry_failed:
        crit["state"] = "successful"
    return {d["structure_id"] for d in results.query(crit, properties=["structure_id"])}


def plan_campaign(
    spec: CampaignSpec, store: JobStore, retry_failed: bool = False, strict: bool = False
) -> CampaignPlan:
    """Everything that can go wrong before compute goes wrong here, with a clear message.

    Files that cannot be read are stored at once as failed candidates with the reader's
    message (``strict``: they stop the campaign instead).
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

    done = _stored_ids(store, spec.name, potential.card.checksum, retry_failed)
    todo = [c for c in candidates if c.structure_id not in done]
    refs_todo = [c for c in bulk_refs if c.structure_id not in done]
    dimers_todo = [c for c in dimer_refs if c.structure_id not in done]
    chunk = ChunkSettings(model=spec.model, device=spec.device, campaign=spec.name)
    relax = RelaxMaker(relax=spec.relax.settings())
    if pool.unreadable:
        record_unreadable(store, pool.unreadable, spec.name, potential, relax.recorded_settings())
    hull = HullMaker(
        campaign=spec.name,
        model_checksum=potential.card.checksum,
        mode=spec.hull.mode,
        reference_entries=reference_entries,
    )
    flow = campaign_flow(spec.name, todo, refs_todo, dimers_todo, chunk, relax, hull, spec.chunk_size)
    n_all = len(candidates) + len(bulk_refs) + len(dimer_refs)
    n_todo = len(todo) + len(refs_todo) + len(dimers_todo)
    return CampaignPlan(spec, flow, candidates, n_todo, n_all - n_todo, unsupported, pool.unreadable)


def record_unreadable(
    store: JobStore, unreadable: dict[str, str], campaign: str, potential: Potential, settings: dict
) -> None:
    """One failed relax document per unreadable file, with the reader's message.

    Its uuid is the one a readable file of the same name would get, so fixing the file and
    running again (``--retry-failed``) replaces the failure.
    """
    from datetime import UTC, datetime
    from pathlib import Path

    from mlipflows.makers.base import result_uuid
    from mlipflows.schemas import ModelInfo
    from mlipflows.store import write_results

    rows = []
    for path, reason in unreadable.items():
        sid = Path(path).stem
        rows.append(
            {
                "uuid": result_uuid(campaign, sid, "relax", potential.card.checksum, settings),
                "structure_id": sid,
                "campaign": campaign,
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
