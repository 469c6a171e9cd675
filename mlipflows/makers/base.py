"""What every chunk job shares: load the model once, run the engine, build and store documents."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from jobflow import CURRENT_JOB
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget, SystemResult
from mlipflows.potentials import Potential, load_potential
from mlipflows.progress import add_time, report_chunk
from mlipflows.schemas import BaseDocument, TaskDocument, TaskType
from mlipflows.store import write_results

_NAMESPACE = uuid.UUID("6b1f2d3e-4c5a-4e7b-9a10-3f2e1d0c9b8a")

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
    """

    model: str = "sevennet-0"
    device: str = "cpu"
    dtype: str = "float32"
    campaign: str | None = None
    tags: list[str] = field(default_factory=list)
    max_atoms: int | None = None
    max_edges: int | None = None

    def potential(self) -> Potential:
        return load_potential(self.model, device=self.device, dtype=self.dtype)

    def budget(self, potential: Potential) -> BatchBudget:
        default = BatchBudget.for_potential(potential)
        return BatchBudget(
            max_atoms=self.max_atoms or default.max_atoms,
            max_edges=self.max_edges or default.max_edges,
        )


def result_uuid(
    campaign: str | None, structure_id: str, task_type: str, checksum: str, settings: dict
) -> str:
    """Deterministic id: rerunning the same calculation replaces, never duplicates, its result."""
    key = json.dumps([campaign, structure_id, task_type, checksum, settings], sort_keys=True)
    return str(uuid.uuid5(_NAMESPACE, key))


def default_ids(structures: Sequence[Structure]) -> list[str]:
    """Content hashes as ids when the user gives none (stable across reruns)."""
    ids = []
    for s in structures:
        digest = hashlib.sha1(json.dumps(s.as_dict(), sort_keys=True, default=str).encode()).hexdigest()
        ids.append(f"{s.composition.reduced_formula}-{digest[:10]}")
    return ids


def run_chunk(
    engine: Callable[[list[Structure], Potential, BatchBudget], list[SystemResult]],
    task_type: TaskType,
    structures: list[Structure],
    structure_ids: list[str] | None,
    chunk: ChunkSettings,
    settings: dict[str, Any],
) -> list[TaskDocument]:
    """Run ``engine`` on one chunk and turn each result into a stored :class:`TaskDocument`."""
    ids = list(structure_ids) if structure_ids else default_ids(structures)
    if len(ids) != len(structures):
        raise ValueError(f"{len(ids)} structure ids for {len(structures)} structures")
    potential = chunk.potential()
    t0 = time.perf_counter()
    results = engine(structures, potential, chunk.budget(potential))
    add_time("engine", time.perf_counter() - t0)
    docs = []
    for r, sid, inp in zip(results, ids, structures, strict=True):
        doc = TaskDocument.from_result(
            r,
            structure_id=sid,
            task_type=task_type,
            card=potential.card,
            device=str(potential.device),
            settings=settings,
            input_structure=inp,
            campaign=chunk.campaign,
            tags=chunk.tags,
        )
        doc.uuid = result_uuid(chunk.campaign, sid, task_type, potential.card.checksum, settings)
        docs.append(doc)
    t0 = time.perf_counter()
    store_flat(docs)
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
