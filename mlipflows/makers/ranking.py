"""RankingMaker: relax every polymorph candidate of a formula in one batched run and rank them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jobflow import Maker, job
from pymatgen.core import Structure

from mlipflows.engine import RelaxSettings
from mlipflows.makers.base import CHUNK_JOB, ChunkSettings, provenance, settings_digest, store_flat
from mlipflows.makers.relax import RelaxMaker
from mlipflows.potentials import Potential
from mlipflows.ranking import Relaxed, check_elements, merge_duplicates, ranking_table
from mlipflows.schemas import FailedCandidate, RankedStructure, RankingDocument, TaskDocument
from mlipflows.second_opinion import SecondOpinion, ranking_opinions

log = logging.getLogger(__name__)


@dataclass
class RankingMaker(Maker):
    """Relax candidates (positions + cell, FIRE + Fréchet filter), merge duplicates, rank by E/atom.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
        relax: the relaxation of every candidate (FIRE; fmax eV/Å, max_steps, ...).
        symprec: spglib tolerance for the reported space groups, Å.
        include_unphysical: rank candidates that failed a sanity check too (flagged); by
            default they are listed below the ranking with their reason.
        second_opinion: relax the lowest finalists again with a second model and flag where
            the two disagree on their relative energies.
    """

    name: str = "mlipflows rank"
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    relax: RelaxSettings = field(default_factory=lambda: RelaxSettings(fmax=0.05, max_steps=1000))
    symprec: float = 0.1
    include_unphysical: bool = False
    second_opinion: SecondOpinion | None = None

    @job(data=list(RankingDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(
        self,
        formula: str,
        structures: list[Structure],
        structure_ids: list[str],
        sources: list[str],
        generation: dict[str, Any] | None = None,
    ) -> RankingDocument:
        """The :class:`RankingDocument` of ``formula``; every relaxation is stored as well."""
        return self.rank([(formula, structures, structure_ids, sources, generation or {})])[0]

    def rank(
        self, groups: list[tuple[str, list[Structure], list[str], list[str], dict]]
    ) -> list[RankingDocument]:
        """Rank several formulas' candidates: all of them relaxed in one batched run."""
        potential = self.chunk.potential()
        for formula, *_ in groups:
            check_elements(formula, potential)  # before any compute
        structures = [s for g in groups for s in g[1]]
        ids = [i for g in groups for i in g[2]]
        # stored under FORMULA/id: "proto-rocksalt" of KCl must not replace NaCl's relaxation
        stored = [i if i.startswith(f"{g[0]}/") else f"{g[0]}/{i}" for g in groups for i in g[2]]
        relaxed = RelaxMaker(chunk=self.chunk, relax=self.relax).run(structures, stored)
        for d, original in zip(relaxed, ids, strict=True):
            d.structure_id = original  # the ranking names candidates as they were given
        docs = iter(relaxed)
        out = []
        for formula, structs, _, sources, generation in groups:
            part = [next(docs) for _ in structs]
            doc = ranking_document(formula, part, sources, generation, potential, self)
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
            out.append(doc)
        store_flat(out, exclude=RankingDocument.flat_exclude())
        return out


def ranking_document(
    formula: str,
    docs: list[TaskDocument],
    sources: list[str],
    generation: dict[str, Any],
    potential: Potential,
    maker: RankingMaker,
) -> RankingDocument:
    """Merge duplicates among the successful relaxations and build the ranking.

    Unphysical relaxations (model holes) are listed apart with their reason, unless the
    Maker's ``include_unphysical``: then they are ranked too, flagged.
    """
    include_unphysical, symprec = maker.include_unphysical, maker.symprec
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
    # the candidate pool is part of the ranking's identity: `--n-random 0` after `--n-random 100`
    # is another ranking, not a replacement of the first
    pool = settings_digest(sorted(d.structure_id for d in docs))
    settings = {"fmax": maker.relax.fmax, "seed": generation.get("seed"), "symprec": symprec, "pool": pool}
    if include_unphysical:
        settings["include_unphysical"] = True
    return RankingDocument(
        **provenance(lowest, f"rank-{formula}", "ranking", potential, maker.chunk, settings),
        state="successful" if ranked else "failed",
        error=None if ranked else "no candidate relaxed successfully",
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
