"""The ``polymorphs`` stage: crystal-structure ranking across many compositions, then a new hull.

For each selected composition the existing ranking runs (prototype decorations plus seeded
PyXtal crystals, and the campaign's own structure), several compositions per chunk job, every
candidate of a chunk in one batched relaxation, duplicates merged. Then one job rebuilds the
campaign's hull with each composition's lowest structure (the campaign's candidate or a lower
polymorph) and stores a stability document per candidate under the stage's name, with
``e_above_hull_before``, ``moved`` ("onto" / "off" the hull) and the polymorph that now
represents the composition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jobflow import CURRENT_JOB, Job, JobConfig, Maker, job
from pydantic import Field
from pymatgen.core import Structure

from mlipflows.campaign.stages import CampaignStage, Selected, StageSettings
from mlipflows.engine import RelaxSettings
from mlipflows.makers.base import CHUNK_JOB, ChunkSettings
from mlipflows.schemas import RankingDocument, StabilityDocument
from mlipflows.store import RESULTS


class PolymorphStageSettings(StageSettings):
    n_random: int = Field(20, ge=0, description="random symmetric crystals per composition")
    seed: int = 0
    spacegroups: list[int] | None = Field(None, description="space groups for the random crystals")
    prototypes: bool = True
    fmax: float = Field(0.05, gt=0, description="eV/Å")
    max_steps: int = Field(1000, ge=1)


class PolymorphStage(CampaignStage):
    """Polymorph search per selected composition; the hull rebuilt with the lowest of each."""

    kind = "polymorphs"
    task_type = "stability"
    settings_model = PolymorphStageSettings
    default_chunk_size = 4  # compositions per job
    headline = ("e_above_hull", "moved", "polymorph_spacegroup")

    def maker(self, chunk: ChunkSettings) -> Maker:
        from mlipflows.makers.ranking import RankingMaker

        s = self.settings
        return RankingMaker(chunk=chunk, relax=RelaxSettings(fmax=s.fmax, max_steps=s.max_steps))

    def jobs(self, selected: Sequence[Selected], chunk: ChunkSettings, chunk_size: int) -> list[Job]:
        by_formula: dict[str, Selected] = {}
        for s in selected:
            by_formula.setdefault(s.structure.composition.reduced_formula, s)
        formulas = list(by_formula)
        jobs = []
        for k in range(0, len(formulas), chunk_size):
            part = formulas[k : k + chunk_size]
            j = rank_compositions(
                self.maker(chunk),
                part,
                [by_formula[f].structure for f in part],
                [by_formula[f].structure_id for f in part],
                self.settings.model_dump(),
            )
            j.name = f"{chunk.stage} (polymorphs) {k // chunk_size + 1}"
            jobs.append(j)
        return jobs

    def after(self, context: dict[str, Any]) -> list[Job]:
        j = polymorph_hull(context["plan"])
        j.name = f"{context['plan'].stage} hull"
        return [j]


@job(data=list(RankingDocument.DATA_FIELDS), config=CHUNK_JOB)
def rank_compositions(
    maker: Maker,
    formulas: list[str],
    structures: list[Structure],
    structure_ids: list[str],
    settings: dict[str, Any],
) -> list[RankingDocument]:
    """Polymorph candidates of every formula (with the campaign's own structure), ranked together."""
    from mlipflows.io import Candidate
    from mlipflows.ranking import generate

    groups = []
    for formula, own, sid in zip(formulas, structures, structure_ids, strict=True):
        gen = generate(
            formula,
            n_random=settings["n_random"],
            seed=settings["seed"],
            spacegroups=settings["spacegroups"],
            prototypes=settings["prototypes"],
        )
        cands = [Candidate(f"campaign-{sid}", own, "campaign"), *gen.candidates]
        ids = [f"{formula}/{c.structure_id}" for c in cands]  # unique across the chunk
        groups.append((formula, [c.structure for c in cands], ids, [c.source for c in cands], gen.record()))
    return maker.rank(groups)  # type: ignore[attr-defined]


@job(config=JobConfig(expose_store=True))
def polymorph_hull(plan: Any) -> dict[str, Any]:
    """Rebuild the hull with each composition's lowest structure; store it under the stage's name."""
    from mlipflows.campaign.funnel import stage_docs
    from mlipflows.makers.campaign import build_stability

    store = CURRENT_JOB.store
    results = store.additional_stores[RESULTS]
    results.connect()
    relaxed = stage_docs(results, plan.campaign, "relax", plan.digests["relax"], "relax")
    before = {
        d["structure_id"]: d
        for d in stage_docs(results, plan.campaign, "hull", plan.digests["hull"], "stability")
    }
    rankings = [
        d
        for d in stage_docs(results, plan.campaign, plan.stage, plan.digest, "ranking")
        if d.get("state") == "successful"
    ]
    lowest = {r["formula"]: r["ranking"][0] for r in rankings if r.get("ranking")}
    structures = _ranked_structures(store, rankings)
    docs, used = [], {}
    for d in relaxed:
        formula = d.get("formula_reduced")
        best = lowest.get(formula)
        if (
            best is not None
            and d.get("state") == "successful"
            and "candidate" in d.get("tags", [])
            and best["energy_per_atom"] < d["energy_per_atom"] - 1e-6
            and best["structure_id"] in structures
        ):
            s = Structure.from_dict(structures[best["structure_id"]])
            d = {
                **d,
                "structure": s.as_dict(),
                "energy": best["energy_per_atom"] * len(s),
                "energy_per_atom": best["energy_per_atom"],
                "composition": {el.symbol: amt for el, amt in s.composition.items()},
                "nsites": len(s),
            }
            used[d["structure_id"]] = best
        docs.append(d)

    def annotate(doc: StabilityDocument) -> None:
        old = before.get(doc.structure_id)
        doc.e_above_hull_before = None if old is None else old.get("e_above_hull")
        best = used.get(doc.structure_id)
        if best is not None:
            doc.polymorph, doc.polymorph_spacegroup = best["structure_id"], best["spacegroup"]
        was = old is not None and bool(old.get("is_stable"))
        if doc.is_stable is not None and was != doc.is_stable:
            doc.moved = "onto" if doc.is_stable else "off"

    mode = plan.hull.get("mode", "mlip")
    entries = plan.hull.get("reference_entries", [])  # dft mode: the hull job's DFT entries
    return build_stability(docs, plan.campaign, mode, entries, store, plan.digest, plan.stage, annotate)


def _ranked_structures(store: Any, rankings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Relaxed structure of each ranked polymorph, from the job outputs (the data store)."""
    out: dict[str, dict[str, Any]] = {}
    store.connect()
    for job_uuid in {r.get("job_uuid") for r in rankings if r.get("job_uuid")}:
        try:
            for doc in store.get_output(job_uuid, load=True):
                out.update(doc.get("structures") or {})
        except ValueError:
            continue
    return out
