"""StaticMaker and RelaxMaker: chunk jobs over the batched engine; ``relax_flow`` splits lists."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jobflow import Flow, Job, JobConfig, Maker, job
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget, RelaxSettings, relax, static
from mlipflows.makers.base import ChunkSettings, run_chunk
from mlipflows.potentials import Potential
from mlipflows.progress import report
from mlipflows.schemas import TaskDocument

# chunk jobs write their flat per-structure results straight into the running JobStore
_CONFIG = JobConfig(expose_store=True)


@dataclass
class StaticMaker(Maker):
    """Single-point energy, forces and stress for a chunk of structures.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
    """

    name: str = "mlipflows static"
    chunk: ChunkSettings = field(default_factory=ChunkSettings)

    @job(data=["forces", "trajectory"], config=_CONFIG)
    def make(self, structures: list[Structure], structure_ids: list[str] | None = None) -> list[TaskDocument]:
        """One :class:`TaskDocument` per structure, in input order."""

        def engine(structs: list[Structure], pot: Potential, budget: BatchBudget) -> list:
            return static(structs, pot, budget=budget, progress=lambda n: report(n, 1))

        return run_chunk(engine, "static", structures, structure_ids, self.chunk, {})


@dataclass
class RelaxMaker(Maker):
    """FIRE relaxation (positions and, by default, the full cell) of a chunk of structures.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
        fmax: convergence threshold, eV/Å.
        max_steps: steps before a structure is stored with ``converged=False``.
        cell_filter: "frechet", "hydrostatic" or "fixed".
    """

    name: str = "mlipflows relax"
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    fmax: float = 0.05
    max_steps: int = 500
    cell_filter: str = "frechet"

    def settings(self) -> RelaxSettings:
        return RelaxSettings(fmax=self.fmax, max_steps=self.max_steps, cell_filter=self.cell_filter)  # type: ignore[arg-type]

    @job(data=["forces", "trajectory"], config=_CONFIG)
    def make(self, structures: list[Structure], structure_ids: list[str] | None = None) -> list[TaskDocument]:
        """One :class:`TaskDocument` per structure, in input order."""
        settings = self.settings()

        def engine(structs: list[Structure], pot: Potential, budget: BatchBudget) -> list:
            return relax(structs, pot, settings, budget=budget, progress=report)

        return run_chunk(engine, "relax", structures, structure_ids, self.chunk, self.recorded_settings())

    def recorded_settings(self) -> dict[str, Any]:
        """The settings stored with every result (part of its identity: its uuid)."""
        return {
            "optimizer": "FIRE",
            "fmax": self.fmax,
            "max_steps": self.max_steps,
            "cell_filter": self.cell_filter,
        }


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
    if chunk_size < 1:
        raise ValueError("chunk_size must be ≥ 1")
    maker = maker or RelaxMaker()
    structures = list(structures)
    ids = list(structure_ids) if structure_ids is not None else None
    jobs: list[Job] = []
    for k, start in enumerate(range(0, len(structures), chunk_size)):
        chunk_ids = ids[start : start + chunk_size] if ids is not None else None
        j = maker.make(structures[start : start + chunk_size], chunk_ids)
        j.name = f"{maker.name} {k + 1}"
        jobs.append(j)
    return Flow(jobs, output=[j.output for j in jobs], name=name)
