"""Stability campaigns as jobflow flows: chunked relax jobs, then one hull job."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from jobflow import CURRENT_JOB, Flow, Job, JobConfig, JobOrder, Maker, job
from pymatgen.core import Composition, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from mlipflows.hull import NO_COMPETITOR, RelaxedEntry, Stability, dft_reference_hull, mlip_hull
from mlipflows.io import Candidate
from mlipflows.makers.base import ChunkSettings, result_uuid, store_flat
from mlipflows.makers.relax import RelaxMaker, relax_flow
from mlipflows.schemas import DecompositionPart, ModelInfo, StabilityDocument, identity_fields
from mlipflows.store import RESULTS

log = logging.getLogger(__name__)

CANDIDATE_TAG = "candidate"
REFERENCE_TAG = "reference"


@dataclass
class HullMaker(Maker):
    """Reads a campaign's relaxed structures from the store and writes one stability document each.

    Attributes:
        campaign: campaign name.
        model_checksum: weights checksum of the model whose energies form the hull.
        mode: "mlip" (MLIP-consistent) or "dft" (MP2020-corrected vs DFT reference entries).
        reference_entries: DFT reference entries as dicts (dft mode).
        relax_digest: settings digest of the campaign's relaxations (the "relax" stage).
        digest: settings digest of this hull (the "hull" stage); its documents carry it.
    """

    name: str = "mlipflows hull"
    campaign: str = ""
    model_checksum: str = ""
    mode: str = "mlip"
    reference_entries: list[dict] = field(default_factory=list)
    relax_digest: str | None = None
    digest: str | None = None

    @job(data=["phase_diagrams"], config=JobConfig(expose_store=True))
    def make(self) -> dict[str, Any]:
        """Build the hulls; returns counts and, per chemical system, the entries of its hull."""
        store = CURRENT_JOB.store
        if store is None:
            raise RuntimeError("the hull job needs a JobStore (run it with jobflow)")
        results = store.additional_stores[RESULTS]
        crit = {"campaign": self.campaign, "model.checksum": self.model_checksum, "task_type": "relax"}
        if self.relax_digest is not None:
            crit |= {"stage": "relax", "settings_digest": self.relax_digest}
        docs = list(results.query(crit, properties={"_id": 0}))
        return build_stability(docs, self.campaign, self.mode, self.reference_entries, store, self.digest)


def _relaxed(doc: dict) -> RelaxedEntry:
    composition = doc.get("composition")
    return RelaxedEntry(
        structure_id=doc["structure_id"],
        structure=doc["structure"],
        energy=doc["energy"],
        converged=bool(doc.get("converged")),
        known_composition=Composition(composition) if composition else None,
    )


def build_stability(
    docs: list[dict],
    campaign: str,
    mode: str,
    reference_entries: list[dict],
    store: Any,
    digest: str | None = None,
    stage: str = "hull",
    annotate: Callable[[StabilityDocument], None] | None = None,
) -> dict[str, Any]:
    """Stability documents for every candidate in ``docs`` (relax documents); writes them.

    ``annotate`` may add to each document before it is stored (polymorph stages do).
    """
    from monty.json import MontyDecoder

    candidates = [d for d in docs if CANDIDATE_TAG in d.get("tags", [])]
    references = [d for d in docs if REFERENCE_TAG in d.get("tags", [])]
    failed = [d for d in candidates if d["state"] != "successful"]
    if failed:
        log.warning(
            "%d of %d candidates failed to relax or are unphysical and are left out of the hull: %s",
            len(failed),
            len(candidates),
            ", ".join(d["structure_id"] for d in failed[:10]),
        )
    bad_refs = [d for d in references if d["state"] != "successful"]
    if bad_refs:
        log.warning(
            "%d elemental references failed or are unphysical and are left out: %s",
            len(bad_refs),
            ", ".join(f"{d['structure_id']} ({d['state']})" for d in bad_refs[:10]),
        )
    good = [_relaxed(d) for d in candidates if d["state"] == "successful"]
    if mode == "mlip":
        refs = [_relaxed(d) for d in references if d["state"] == "successful"]
        hull = mlip_hull(good, refs)
    else:
        entries: list[ComputedEntry] = [MontyDecoder().process_decoded(e) for e in reference_entries]
        hull = dft_reference_hull(good, entries)
    stabilities = hull.stabilities
    alone = [s.structure_id for s in stabilities if NO_COMPETITOR in s.warnings]
    if alone:
        log.warning(
            "%d of %d candidates have no compound of another composition in their hull (only "
            "elements and polymorphs), so their e_above_hull is a lower bound: %s; add compounds "
            "to hull.references (or use hull mode dft) for a real screen",
            len(alone),
            len(stabilities),
            ", ".join(alone[:10]),
        )
    by_id = {d["structure_id"]: d for d in candidates}
    where = (stage, digest) if digest is not None else (None, None)
    out_docs = [_document(by_id[s.structure_id], s, mode, where) for s in stabilities]
    out_docs += [_failed_document(d, mode, where) for d in failed]
    if annotate is not None:
        for d in out_docs:
            annotate(d)
    store_flat(out_docs, exclude=())
    n_stable = sum(1 for s in stabilities if s.is_stable)
    return {
        "campaign": campaign,
        "mode": mode,
        "n_candidates": len(candidates),
        "n_failed_relaxations": sum(1 for d in failed if d["state"] == "failed"),
        "n_unphysical": sum(1 for d in failed if d["state"] == "unphysical")
        + sum(1 for s in stabilities if s.unphysical),
        "n_hull_errors": sum(1 for s in stabilities if s.error and not s.unphysical),
        "n_stable": n_stable,
        "phase_diagrams": hull.pools,
    }


def _identity(relax_doc: dict) -> dict[str, Any]:
    """The relax document's identity fields (the same structure), parsed only if one is missing."""
    keys = ("formula_pretty", "formula_reduced", "composition", "chemsys", "elements", "nsites")
    if all(k in relax_doc for k in keys):
        return {k: relax_doc[k] for k in keys}
    return identity_fields(Structure.from_dict(relax_doc["structure"]))


def _base_fields(relax_doc: dict, mode: str, where: tuple[str | None, str | None]) -> dict[str, Any]:
    """Identity of a stability document; ``where`` = (stage, settings digest) in a funnel."""
    model = ModelInfo(**relax_doc["model"])
    settings = {"hull_mode": mode}
    stage, digest = where
    identity = settings if stage is None else {**settings, "_stage": [stage, digest]}
    return {
        "uuid": result_uuid(
            relax_doc["campaign"], relax_doc["structure_id"], "stability", model.checksum, identity
        ),
        "structure_id": relax_doc["structure_id"],
        "campaign": relax_doc["campaign"],
        "stage": stage,
        "settings_digest": digest,
        "tags": relax_doc.get("tags", []),
        "model": model,
        "device": relax_doc["device"],
        "settings": settings,
        "structure": relax_doc["structure"],
        "relax_uuid": relax_doc["uuid"],
        "hull_mode": mode,
        **_identity(relax_doc),
    }


def _document(
    relax_doc: dict, st: Stability, mode: str, where: tuple[str | None, str | None]
) -> StabilityDocument:
    return StabilityDocument(
        **_base_fields(relax_doc, mode, where),
        state="unphysical" if st.unphysical else ("failed" if st.error else "successful"),
        error=st.error,
        energy_per_atom=relax_doc.get("energy_per_atom"),
        corrected_energy_per_atom=st.corrected_energy_per_atom,
        formation_energy_per_atom=st.formation_energy_per_atom,
        e_above_hull=st.e_above_hull,
        is_stable=st.is_stable,
        decomposition=[DecompositionPart(**p) for p in st.decomposition],
        relax_converged=relax_doc.get("converged"),
        warnings=st.warnings,
    )


def _failed_document(relax_doc: dict, mode: str, where: tuple[str | None, str | None]) -> StabilityDocument:
    state = relax_doc["state"]  # "failed" or "unphysical": either way, not on any hull
    return StabilityDocument(
        **_base_fields(relax_doc, mode, where),
        state=state,
        error=f"relaxation {state}: {relax_doc.get('error')}",
        energy_per_atom=relax_doc.get("energy_per_atom") if state == "unphysical" else None,
        relax_converged=False,
    )


def campaign_flow(
    name: str,
    candidates: Sequence[Candidate],
    bulk_references: Sequence[Candidate],
    dimer_references: Sequence[Candidate],
    chunk: ChunkSettings,
    relax: RelaxMaker,
    hull: HullMaker,
    chunk_size: int,
    stages: Sequence[Job] = (),
) -> Flow:
    """Candidates and references → chunked relax jobs → (after all of them) the hull job →
    the funnel's stage jobs, one after the other (each expands into its chunks when it runs)."""
    jobs: list[Flow | Job] = []

    def add(cands: Sequence[Candidate], tag: str, cell_filter: str, label: str) -> None:
        if not cands:
            return
        settings = ChunkSettings(**{**chunk.__dict__, "tags": [*chunk.tags, tag]})
        maker = RelaxMaker(
            name=f"{label} {name}",
            chunk=settings,
            relax=replace(relax.relax, cell_filter=cell_filter),  # type: ignore[arg-type]
        )
        jobs.append(
            relax_flow(
                [c.structure for c in cands],
                [c.structure_id for c in cands],
                chunk_size=chunk_size,
                maker=maker,
                name=label,
            )
        )

    add(candidates, CANDIDATE_TAG, relax.relax.cell_filter, "relax candidates")
    add(bulk_references, REFERENCE_TAG, relax.relax.cell_filter, "relax references")
    add(dimer_references, REFERENCE_TAG, "fixed", "relax molecular references")
    hull_job = hull.make()
    hull_job.name = f"hull {name}"
    # LINEAR: each part waits for the one before without resolving its outputs
    parts: list[Flow | Job] = [Flow(jobs, name="relaxations")] if jobs else []
    parts += [hull_job, *stages]
    return Flow(parts, order=JobOrder.LINEAR, output=hull_job.output, name=f"campaign {name}")
