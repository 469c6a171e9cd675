"""SecondOpinionMaker: model B relaxes a chunk of finalists; formation energies vs model A's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jobflow import job
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget, RelaxSettings, SystemResult, relax
from mlipflows.engine.sanity import elemental_energies, reference_energy
from mlipflows.makers.base import CHUNK_JOB, ChunkMaker, ChunkSettings
from mlipflows.potentials import Potential
from mlipflows.progress import report
from mlipflows.schemas.opinion import SecondOpinionDocument
from mlipflows.second_opinion import SecondOpinion


@dataclass
class SecondOpinionMaker(ChunkMaker):
    """Relax each structure with model B (``opinion.model``) from its current geometry and
    compare its formation energy (against model B's own elemental references) with model A's.

    The chunk's ``model`` is model B: the documents record which model decided them.
    """

    name: str = "mlipflows second opinion"
    opinion: SecondOpinion | None = None
    document_class = SecondOpinionDocument

    def __post_init__(self) -> None:
        if self.opinion is not None:  # the chunk runs model B
            self.chunk = ChunkSettings(**{**self.chunk.__dict__, "model": self.opinion.model})

    def recorded_settings(self) -> dict[str, Any]:
        o = self.opinion
        return {} if o is None else {"threshold": o.threshold, "fmax": o.fmax, "max_steps": o.max_steps}

    @job(data=list(SecondOpinionDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(
        self,
        structures: list[Structure],
        structure_ids: list[str] | None = None,
        formation_a: list[float | None] | None = None,
    ) -> list[SecondOpinionDocument]:
        """One document per structure; ``formation_a`` is model A's formation energy, eV/atom."""
        return self.run(structures, structure_ids, formation_a=formation_a)  # type: ignore[return-value]

    def compute(
        self,
        structures: list[Structure],
        potential: Potential,
        budget: BatchBudget,
        formation_a: list[float | None] | None = None,
    ) -> list[tuple[SystemResult, float | None, float | None]]:
        assert self.opinion is not None
        settings = RelaxSettings(fmax=self.opinion.fmax, max_steps=self.opinion.max_steps)
        results = relax(structures, potential, settings, budget=budget, progress=report)
        elements = {el.symbol for s in structures for el in s.composition.elements}
        mu = elemental_energies(potential, elements)
        out = []
        for r, a in zip(results, formation_a or [None] * len(structures), strict=True):
            ref = reference_energy(r.structure.composition, mu) if r.ok else None
            b = None if ref is None else r.energy / len(r.structure) - ref  # type: ignore[operator]
            out.append((r, a, b))
        return out

    def document(
        self, outcome: tuple, structure_id: str, structure: Structure, potential: Potential
    ) -> SecondOpinionDocument:
        r, a, b = outcome
        threshold = self.opinion.threshold if self.opinion else 0.0
        diff = None if a is None or b is None else b - a
        return SecondOpinionDocument(
            **self.fields(r.structure, structure_id, potential),
            state="successful" if r.ok and b is not None else r.state if not r.ok else "failed",  # type: ignore[arg-type]
            error=r.reason if not r.ok else (None if b is not None else "no elemental reference energies"),
            model_a_formation_energy_per_atom=a,
            formation_energy_per_atom=b,
            difference=diff,
            threshold=threshold,
            disagrees=diff is None or abs(diff) > threshold,
            energy_per_atom=None if r.energy is None else r.energy / len(r.structure),
        )
