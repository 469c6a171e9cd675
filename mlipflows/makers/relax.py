"""StaticMaker and RelaxMaker: chunk jobs over the batched engine; ``relax_flow`` splits lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, Maker, job
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget, RelaxSettings, SystemResult, relax, static
from mlipflows.makers.base import CHUNK_JOB, ChunkMaker, as_structures, checked_ids
from mlipflows.potentials import Potential
from mlipflows.progress import report
from mlipflows.schemas import TaskDocument


@dataclass
class StaticMaker(ChunkMaker):
    """Single-point energy, forces and stress for a chunk of structures.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
    """

    name: str = "mlipflows static"
    document_class = TaskDocument
    task_type = "static"

    @job(data=list(TaskDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(self, structures: list[Structure], structure_ids: list[str] | None = None) -> list[TaskDocument]:
        """One :class:`TaskDocument` per structure, in input order."""
        return self.run(structures, structure_ids)  # type: ignore[return-value]

    def compute(
        self, structures: list[Structure], potential: Potential, budget: BatchBudget, **_: Any
    ) -> list[SystemResult]:
        return static(structures, potential, budget=budget, progress=lambda n: report(n, 1))

    def document(
        self, outcome: SystemResult, structure_id: str, structure: Structure, potential: Potential
    ) -> TaskDocument:
        return TaskDocument.from_result(
            outcome, self.fields(outcome.structure, structure_id, potential), "static", structure
        )


@dataclass
class RelaxMaker(ChunkMaker):
    """FIRE relaxation (positions and, by default, the full cell) of a chunk of structures.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
        relax: the relaxation (:class:`~mlipflows.engine.RelaxSettings`: fmax eV/Å, max_steps,
            cell filter "frechet" / "hydrostatic" / "fixed", symmetry, sanity limits).
    """

    name: str = "mlipflows relax"
    relax: RelaxSettings = field(default_factory=RelaxSettings)
    document_class = TaskDocument
    task_type = "relax"

    @job(data=list(TaskDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(self, structures: list[Structure], structure_ids: list[str] | None = None) -> list[TaskDocument]:
        """One :class:`TaskDocument` per structure, in input order."""
        return self.run(structures, structure_ids)  # type: ignore[return-value]

    def recorded_settings(self) -> dict[str, Any]:
        return self.relax.record()

    def compute(
        self, structures: list[Structure], potential: Potential, budget: BatchBudget, **_: Any
    ) -> list[SystemResult]:
        return relax(structures, potential, self.relax, budget=budget, progress=report)

    def document(
        self, outcome: SystemResult, structure_id: str, structure: Structure, potential: Potential
    ) -> TaskDocument:
        return TaskDocument.from_result(
            outcome, self.fields(outcome.structure, structure_id, potential), "relax", structure
        )


def relax_flow(
    structures: Sequence[Structure],
    structure_ids: Sequence[str] | None = None,
    chunk_size: int = 64,
    maker: Maker | None = None,
    name: str = "mlipflows relax",
) -> Flow:
    """Split ``structures`` into chunk jobs of ``chunk_size``; the flow's output is their outputs.

    ``maker`` is any chunk Maker whose ``make(structures, structure_ids)`` returns a Job
    (RelaxMaker by default; StaticMaker, ElasticMaker, ...).

    Each chunk job loads the model once (cached per worker process) and evaluates its structures
    as batches, so fewer, larger chunks are faster; smaller chunks spread better across workers.
    """
    return Flow(chunk_jobs(structures, structure_ids, chunk_size, maker or RelaxMaker()), name=name)


def chunk_jobs(
    structures: Sequence[Structure],
    structure_ids: Sequence[str] | None,
    chunk_size: int,
    maker: Maker,
    **per_structure: Sequence[Any],
) -> list[Job]:
    """One ``maker.make`` job per ``chunk_size`` structures (per-structure arguments split alike)."""
    if chunk_size < 1:
        raise ValueError("chunk_size must be ≥ 1")
    structures, structure_ids = as_structures(structures, structure_ids)
    ids = checked_ids(structures, structure_ids) if structure_ids is not None else None
    jobs: list[Job] = []
    for k, start in enumerate(range(0, len(structures), chunk_size)):
        part = slice(start, start + chunk_size)
        extra = {key: list(values)[part] for key, values in per_structure.items()}
        j = maker.make(structures[part], ids[part] if ids is not None else None, **extra)
        j.name = f"{maker.name} {k + 1}"
        jobs.append(j)
    return jobs
