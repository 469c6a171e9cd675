"""What every chunk job shares: load the model once, run the engine, build and store documents.

A chunk Maker (:class:`ChunkMaker`) is a jobflow Maker whose job takes a list of structures
and returns one document per structure. The base does everything but the science: ids,
the warm model, the batch budget, timings, one provenance + uuid helper for every document,
the flat-store write and the progress report. A subclass says what it computes
(:meth:`ChunkMaker.compute`, batched over the whole chunk) and how one outcome becomes a
document (:meth:`ChunkMaker.document`). Its ``make`` is one line, decorated with the data
fields of its document class::

    @job(data=list(PhononDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(self, structures, structure_ids=None):
        return self.run(structures, structure_ids)
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from jobflow import CURRENT_JOB, JobConfig, Maker
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget
from mlipflows.potentials import Potential, load_potential
from mlipflows.progress import add_time, report_chunk
from mlipflows.schemas import BaseDocument, ModelInfo, identity_fields
from mlipflows.schemas.base import Timings
from mlipflows.store import write_results

_NAMESPACE = uuid.UUID("6b1f2d3e-4c5a-4e7b-9a10-3f2e1d0c9b8a")

# chunk jobs write their flat per-structure results straight into the running JobStore
CHUNK_JOB = JobConfig(expose_store=True)

# Fields kept out of the flat results collection (they live in the job output / data store).
BULKY_FIELDS = ("forces", "trajectory", "input_structure")


@dataclass
class ChunkSettings:
    """Settings shared by every chunk Maker.

    Attributes:
        model: registry name, checkpoint path or ``pkg.module:factory``.
        device: "cpu", "cuda" or "auto".
        campaign: campaign name stored with every result.
        tags: free-form labels stored with every result (``mlipflows results --tag``).
        max_atoms / max_edges: batch budget for one batched call (None = device default).
        dtype: "float32" or "float64" (models that support it; float64 for finite differences
            of forces, e.g. SevenNet third-order force constants).
        stage: the campaign stage the results belong to (funnels); stored with every result.
        settings_digest: the stage's settings digest; with the stage it is part of each
            result's identity, so changed settings never reuse or replace old results.
    """

    model: str = "sevennet-0"
    device: str = "cpu"
    dtype: str = "float32"
    campaign: str | None = None
    tags: list[str] = field(default_factory=list)
    max_atoms: int | None = None
    max_edges: int | None = None
    stage: str | None = None
    settings_digest: str | None = None

    def potential(self) -> Potential:
        return load_potential(self.model, device=self.device, dtype=self.dtype)

    def budget(self, potential: Potential) -> BatchBudget:
        return BatchBudget.for_potential(potential, max_atoms=self.max_atoms, max_edges=self.max_edges)


def result_uuid(
    campaign: str | None, structure_id: str, task_type: str, checksum: str, settings: dict
) -> str:
    """Deterministic id: rerunning the same calculation replaces, never duplicates, its result."""
    key = json.dumps([campaign, structure_id, task_type, checksum, settings], sort_keys=True)
    return str(uuid.uuid5(_NAMESPACE, key))


def settings_digest(*parts: Any) -> str:
    """A short stable digest of JSON-like ``parts`` (settings, model checksums, other digests)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance(
    structure: Structure,
    structure_id: str,
    task_type: str,
    potential: Potential,
    chunk: ChunkSettings,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """Identity, provenance and the deterministic uuid of one document (every Maker uses this).

    The uuid covers the campaign, structure, task type, model checksum, settings and, in a
    funnel, the stage and its settings digest.
    """
    identity = settings
    if chunk.stage is not None:
        identity = {**settings, "_stage": [chunk.stage, chunk.settings_digest]}
    return {
        "uuid": result_uuid(chunk.campaign, structure_id, task_type, potential.card.checksum, identity),
        "structure_id": structure_id,
        "campaign": chunk.campaign,
        "stage": chunk.stage,
        "settings_digest": chunk.settings_digest,
        "tags": list(chunk.tags),
        **identity_fields(structure),
        "model": ModelInfo.from_card(potential.card),
        "device": str(potential.device),
        "settings": settings,
        "structure": structure.as_dict(),
    }


def default_ids(structures: Sequence[Structure]) -> list[str]:
    """Content hashes as ids when the user gives none (stable across reruns)."""
    ids = []
    for s in structures:
        digest = hashlib.sha1(json.dumps(s.as_dict(), sort_keys=True, default=str).encode()).hexdigest()
        ids.append(f"{s.composition.reduced_formula}-{digest[:10]}")
    return ids


def as_structures(structures: Any, structure_ids: Any = None) -> tuple[list[Structure], list[str] | None]:
    """The structures of a chunk from what a user or an upstream job passes: a list or one
    item (atomate2's habit), each a pymatgen Structure, its dict, or an upstream job's result
    document (``relax_job.output``: its structure, and its ``structure_id`` unless ids are
    given)."""
    if isinstance(structures, Structure | dict | BaseDocument):
        structures = [structures]
        structure_ids = [structure_ids] if isinstance(structure_ids, str) else structure_ids
    out, doc_ids = [], []
    for k, item in enumerate(structures):
        if isinstance(item, BaseDocument):
            item = item.model_dump()
        if isinstance(item, dict) and "structure" in item and "lattice" not in item:  # a document
            doc_ids.append(item.get("structure_id"))
            item = item["structure"]
        if isinstance(item, dict):
            item = Structure.from_dict(item)
        if not isinstance(item, Structure):
            raise TypeError(
                f"structure {k} is a {type(item).__name__}: pass pymatgen Structures (or their "
                "dicts, or an upstream job's result documents)"
            )
        out.append(item)
    if structure_ids is None and doc_ids and len(doc_ids) == len(out) and all(doc_ids):
        structure_ids = doc_ids
    return out, structure_ids


def checked_ids(structures: Sequence[Structure], structure_ids: Sequence[str] | None) -> list[str]:
    """The given ids (one per structure) or content hashes."""
    ids = list(structure_ids) if structure_ids else default_ids(structures)
    if len(ids) != len(structures):
        raise ValueError(f"{len(ids)} structure ids for {len(structures)} structures")
    shared = sorted(i for i, n in Counter(ids).items() if n > 1)
    if shared:  # one result would silently replace another's
        raise ValueError(f"structure ids must be unique; shared: {', '.join(map(str, shared[:5]))}")
    return ids


@dataclass
class ChunkMaker(Maker):
    """Base of every chunk Maker: one warm model, one batched computation, one document each.

    Subclasses set ``document_class`` and implement :meth:`recorded_settings`,
    :meth:`compute` and :meth:`document`, and a one-line ``make`` that calls :meth:`run`.
    """

    name: str = "mlipflows chunk"
    chunk: ChunkSettings = field(default_factory=ChunkSettings)

    document_class: ClassVar[type[BaseDocument]] = BaseDocument
    # the documents' task type (relax and static share TaskDocument; the others have one each)
    task_type: ClassVar[str | None] = None

    def recorded_settings(self) -> dict[str, Any]:
        """The settings stored with every result (part of its identity: its uuid)."""
        return {}

    def compute(
        self, structures: list[Structure], potential: Potential, budget: BatchBudget, **per_structure: Any
    ) -> Sequence[Any]:
        """One outcome per structure, computed for the whole chunk in batched engine calls."""
        raise NotImplementedError

    def document(
        self, outcome: Any, structure_id: str, structure: Structure, potential: Potential
    ) -> BaseDocument:
        """The document of one outcome (``structure`` is the input structure)."""
        raise NotImplementedError

    def fields(
        self, structure: Structure, structure_id: str, potential: Potential, settings: dict | None = None
    ) -> dict[str, Any]:
        """:func:`provenance` for this Maker's task type and recorded settings."""
        task_type = self.task_type or self.document_class.model_fields["task_type"].default
        recorded = self.recorded_settings() if settings is None else settings
        return provenance(structure, structure_id, task_type, potential, self.chunk, recorded)

    def run(
        self, structures: list[Structure], structure_ids: list[str] | None = None, **per_structure: Any
    ) -> list[BaseDocument]:
        """Compute, build and store one document per structure, in input order."""
        structures, structure_ids = as_structures(structures, structure_ids)
        ids = checked_ids(structures, structure_ids)
        potential = self.chunk.potential()
        t0 = time.perf_counter()
        outcomes = self.compute(list(structures), potential, self.chunk.budget(potential), **per_structure)
        wall = time.perf_counter() - t0
        add_time("engine", wall)
        if self.chunk.stage:
            add_time(f"engine:{self.chunk.stage}", wall)
        docs = [
            self.document(o, sid, s, potential) for o, sid, s in zip(outcomes, ids, structures, strict=True)
        ]
        for d in docs:
            if not d.timings.wall_s:
                d.timings = Timings(wall_s=wall / max(len(docs), 1))
        t0 = time.perf_counter()
        store_flat(docs, exclude=self.document_class.flat_exclude())
        add_time("results_store", time.perf_counter() - t0)
        report_chunk()
        return docs


def store_flat(docs: Sequence[BaseDocument], exclude: Sequence[str] = BULKY_FIELDS) -> None:
    """Write flat copies of ``docs`` (minus bulky fields) to the running job's results store.

    Needs ``JobConfig(expose_store=True)`` on the job; outside a job it does nothing.
    """
    store = CURRENT_JOB.store
    if store is None:
        return
    job_uuid = CURRENT_JOB.job.uuid if CURRENT_JOB.job is not None else None
    flat = []
    for d in docs:
        row = d.model_dump(mode="json", exclude=set(exclude))
        row["job_uuid"] = job_uuid
        flat.append(row)
    write_results(store, flat)
