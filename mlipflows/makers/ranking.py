"""RankingMaker: relax every polymorph candidate of a formula in one batched run and rank them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jobflow import JobConfig, Maker, job
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget, RelaxSettings, relax
from mlipflows.makers.base import ChunkSettings, result_uuid, run_chunk, store_flat
from mlipflows.potentials import Potential
from mlipflows.progress import report
from mlipflows.ranking import Relaxed, check_elements, merge_duplicates, ranking_table
from mlipflows.schemas import (
    FailedCandidate,
    ModelInfo,
    RankedStructure,
    RankingDocument,
    TaskDocument,
    identity_fields,
)
from mlipflows.second_opinion import SecondOpinion, ranking_opinions

log = logging.getLogger(__name__)


@dataclass
class RankingMaker(Maker):
    """Relax candidates (positions + cell, FIRE + Fréchet filter), merge duplicates, rank by E/atom.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
        fmax: force threshold, eV/Å.
        max_steps: FIRE steps before a candidate is ranked as not converged.
        symprec: spglib tolerance for the reported space groups, Å.
        include_unphysical: rank candidates that failed a sanity check too (flagged); by
            default they are listed below the ranking with their reason.
        second_opinion: relax the lowest finalists again with a second model and flag where
            the two disagree on their relative energies.
    """

    name: str = "mlipflows rank"
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    fmax: float = 0.05
    max_steps: int = 1000
    symprec: float = 0.1
    include_unphysical: bool = False
    second_opinion: SecondOpinion | None = None

    @job(data=["structures"], config=JobConfig(expose_store=True))
    def make(
        self,
        formula: str,
        structures: list[Structure],
        structure_ids: list[str],
        sources: list[str],
        generation: dict[str, Any] | None = None,
    ) -> RankingDocument:
        """The :class:`RankingDocument` of ``formula``; every relaxation is stored as well."""
        potential = self.chunk.potential()
        check_elements(formula, potential)  # before any compute
        settings = RelaxSettings(fmax=self.fmax, max_steps=self.max_steps)

        def engine(structs: list[Structure], pot: Potential, budget: BatchBudget) -> list:
            return relax(structs, pot, settings, budget=budget, progress=report)

        recorded = {
            "optimizer": "FIRE",
            "fmax": self.fmax,
            "max_steps": self.max_steps,
            "cell_filter": "frechet",
        }
        docs = run_chunk(engine, "relax", structures, structure_ids, self.chunk, recorded)
        doc = ranking_document(
            formula,
            docs,
            sources,
            generation or {},
            potential,
            self.chunk,
            self.symprec,
            self.include_unphysical,
        )
        if self.second_opinion is not None and doc.ranking:
            top = doc.ranking[: self.second_opinion.top]
            doc.second_opinion_model = self.second_opinion.model
            doc.second_opinion = ranking_opinions(
                [r.structure_id for r in top],
                [Structure.from_dict(doc.structures[r.structure_id]) for r in top],
                [r.energy_per_atom for r in top],
                self.second_opinion,
                self.chunk.device,
            )
        store_flat([doc], exclude=("structures",))
        return doc


def ranking_document(
    formula: str,
    docs: list[TaskDocument],
    sources: list[str],
    generation: dict[str, Any],
    potential: Potential,
    chunk: ChunkSettings,
    symprec: float,
    include_unphysical: bool = False,
) -> RankingDocument:
    """Merge duplicates among the successful relaxations and build the ranking.

    Unphysical relaxations (model holes) are listed apart with their reason, unless
    ``include_unphysical``: then they are ranked too, flagged.
    """
    rankable = {"successful", "unphysical"} if include_unphysical else {"successful"}
    relaxed = [
        Relaxed(
            d.structure_id,
            src,
            d.get_structure(),
            float(d.energy),  # type: ignore[arg-type]
            d.converged,
            d.error if d.state == "unphysical" else None,
        )
        for d, src in zip(docs, sources, strict=True)
        if d.state in rankable and d.energy is not None
    ]
    failed = [
        FailedCandidate(structure_id=d.structure_id, error=d.error or "") for d in docs if d.state == "failed"
    ]
    unphysical = [
        FailedCandidate(structure_id=d.structure_id, error=d.error or "", energy_per_atom=d.energy_per_atom)
        for d in docs
        if d.state == "unphysical"
    ]
    for f in failed:
        log.warning("candidate %s failed: %s", f.structure_id, f.error)
    for f in unphysical:
        log.warning("candidate %s is unphysical: %s", f.structure_id, f.error)
    table = ranking_table(merge_duplicates(relaxed), symprec) if relaxed else None
    ranked = [RankedStructure(**row) for row in table.to_dict("records")] if table is not None else []
    by_id = {r.structure_id: r.structure for r in relaxed}
    lowest = by_id[ranked[0].structure_id] if ranked else docs[0].get_structure()
    settings = {"fmax": docs[0].settings.get("fmax"), "seed": generation.get("seed"), "symprec": symprec}
    if include_unphysical:
        settings["include_unphysical"] = True
    return RankingDocument(
        uuid=result_uuid(chunk.campaign, f"rank-{formula}", "ranking", potential.card.checksum, settings),
        structure_id=f"rank-{formula}",
        campaign=chunk.campaign,
        tags=chunk.tags,
        **identity_fields(lowest),
        model=ModelInfo.from_card(potential.card),
        device=str(potential.device),
        settings=settings,
        state="successful" if ranked else "failed",
        error=None if ranked else "no candidate relaxed successfully",
        structure=lowest.as_dict(),
        formula=formula,
        seed=generation.get("seed"),
        generation=generation,
        n_candidates=len(docs),
        n_failed=len(failed),
        n_unphysical=len(unphysical),
        n_unique=len(ranked),
        ranking=ranked,
        failed=failed,
        unphysical=unphysical,
        structures={r.structure_id: by_id[r.structure_id].as_dict() for r in ranked},
    )
