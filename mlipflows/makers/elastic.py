"""ElasticMaker: elastic tensors of a chunk of structures with one warm model.

Per chunk: (1) one batched tight relaxation (positions + cell) of every structure, (2) the 24
strained cells of every relaxed structure in *one* batched relaxation at fixed cell (atoms
relax, cell held), (3) one batched static for their stresses (and the equilibrium stresses),
(4) a pymatgen fit per structure (:mod:`mlipflows.elastic`).

The fixed-cell relaxation does not evaluate stresses (the engine skips them when the cell is
fixed), hence the separate static call on the relaxed strained cells.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from jobflow import Flow, job
from monty.json import MSONable
from pymatgen.analysis.elasticity import Strain
from pymatgen.core import Structure

from mlipflows.elastic import (
    DEFAULT_STRAINS,
    ElasticFit,
    StrainSet,
    fit_elastic_tensor,
    strain_set,
    to_gpa_stress,
)
from mlipflows.engine import BatchBudget, RelaxSettings, SystemResult, relax, static
from mlipflows.engine.symmetry import DEFAULT_SYMPREC, loose_spacegroup, symmetry_change_note
from mlipflows.makers.base import CHUNK_JOB, ChunkMaker
from mlipflows.makers.relax import relax_flow
from mlipflows.potentials import Potential
from mlipflows.progress import report
from mlipflows.schemas import ElasticDocument, ElasticFittingData, FailedStrain
from mlipflows.schemas.base import Timings

log = logging.getLogger(__name__)


def tight_relax_settings(fmax: float = 0.002, max_steps: int = 1000) -> RelaxSettings:
    """The relaxation before straining (positions + full cell).

    Symmetry-preserving: forces and stress are symmetrized with the input's space group (found
    with a 1e-3 Å tolerance, so CIF round-off does not lower it), so the strained cells start
    from an exactly symmetric equilibrium and a symmetry change is recorded, not hidden.
    """
    return RelaxSettings(
        fmax=fmax, max_steps=max_steps, cell_filter="frechet", symmetrize=True, symprec=DEFAULT_SYMPREC
    )


def strained_relax_settings(fmax: float = 0.002, max_steps: int = 500) -> RelaxSettings:
    """Relaxation of the strained cells: atoms only, the applied strain (cell) held fixed."""
    return RelaxSettings(fmax=fmax, max_steps=max_steps, cell_filter="fixed")


@dataclass
class ElasticSettings(MSONable):
    """How elastic tensors are computed.

    Attributes:
        relax: the tight relaxation before straining (positions + cell, symmetry kept).
        strained_relax: the fixed-cell relaxation of the strained cells.
        strains: strain magnitudes applied to each of the six components (fraction).
        symprec: spglib tolerance for symmetrizing the tensor, Å.
        max_residual_fraction: warn when the fit residual exceeds this share of the stress signal.
    """

    relax: RelaxSettings = field(default_factory=tight_relax_settings)
    strained_relax: RelaxSettings = field(default_factory=strained_relax_settings)
    strains: tuple[float, ...] = DEFAULT_STRAINS
    symprec: float = DEFAULT_SYMPREC
    max_residual_fraction: float = 0.1

    def __post_init__(self) -> None:
        self.strains = tuple(self.strains)  # JSON gives a list back

    @classmethod
    def with_fmax(cls, fmax: float, symprec: float = DEFAULT_SYMPREC, **kwargs: Any) -> ElasticSettings:
        """Both relaxations to ``fmax`` (eV/Å); ``symprec`` for the relaxation and the tensor."""
        relax = replace(tight_relax_settings(fmax), symprec=symprec)
        return cls(relax=relax, strained_relax=strained_relax_settings(fmax), symprec=symprec, **kwargs)

    def recorded(self) -> dict[str, Any]:
        return {
            "relax": self.relax.record(),
            "strained_relax": self.strained_relax.record(),
            "strains": list(self.strains),
            "symprec": self.symprec,
            "max_residual_fraction": self.max_residual_fraction,
        }


@dataclass
class ElasticOutcome:
    """Everything computed for one input structure (before it becomes a document)."""

    relaxed: SystemResult
    strains: StrainSet | None = None
    stresses_gpa: list[np.ndarray | None] = field(default_factory=list)
    eq_stress_gpa: np.ndarray | None = None
    failed: list[FailedStrain] = field(default_factory=list)
    fit: ElasticFit | None = None
    error: str | None = None
    wall_s: float = 0.0
    unphysical: bool = False  # the error is a failed sanity check, not a crash
    input_loose: int | None = None  # a P1 input's group at a loose tolerance (symmetry notes)


def compute_elastic(
    structures: Sequence[Structure],
    potential: Potential,
    settings: ElasticSettings,
    budget: BatchBudget | None = None,
) -> list[ElasticOutcome]:
    """Elastic tensors of ``structures``; failures are recorded per structure, never raised."""
    t0 = time.perf_counter()

    def step(_finished: int, steps: int) -> None:  # structures count as done only after the fit
        report(0, steps)

    relaxed = relax(
        structures,
        potential,
        settings.relax,
        budget=budget,
        progress=step,
    )
    outcomes = [ElasticOutcome(relaxed=r) for r in relaxed]
    for o, s in zip(outcomes, structures, strict=True):
        if o.relaxed.symmetry_changed and (o.relaxed.spacegroup_before or 0) <= 2:
            found = loose_spacegroup(s, settings.relax.symprec)
            o.input_loose = found[0] if found else None
    cells: list[Structure] = []
    owner: list[tuple[int, int]] = []  # (structure, strain) of each strained cell
    for k, o in enumerate(outcomes):
        if not o.relaxed.ok:
            o.error = f"relaxation {o.relaxed.state}: {o.relaxed.reason}"
            o.unphysical = o.relaxed.unphysical is not None
            continue
        o.strains = strain_set(o.relaxed.structure, settings.strains)
        cells += [*o.strains.structures, o.relaxed.structure]
        owner += [(k, j) for j in range(len(o.strains.structures))] + [(k, -1)]
    strained = relax(
        [c for c, (_, j) in zip(cells, owner, strict=True) if j >= 0],
        potential,
        settings.strained_relax,
        budget=budget,
        progress=step,
    )
    # stresses of relaxed strained cells and of the equilibrium cells, in one batched static
    it = iter(strained)
    final = [next(it).structure if j >= 0 else c for c, (_, j) in zip(cells, owner, strict=True)]
    stressed = static(final, potential, budget=budget)
    it = iter(strained)
    for (k, j), st in zip(owner, stressed, strict=True):
        o = outcomes[k]
        if j < 0:
            o.eq_stress_gpa = to_gpa_stress(st.stress) if st.ok else None
            if not st.ok:
                o.error = f"equilibrium stress {st.state}: {st.reason}"
                o.unphysical = st.unphysical is not None
            continue
        rel = next(it)
        if not o.stresses_gpa:
            o.stresses_gpa = [None] * len(o.strains.structures)  # type: ignore[union-attr]
        reason = rel.reason or st.reason
        if reason is None and not rel.converged:
            reason = f"atoms did not relax below {settings.strained_relax.fmax} eV/Å in {rel.n_steps} steps"
        if reason is None:
            o.stresses_gpa[j] = to_gpa_stress(st.stress)
        else:
            voigt = Strain(o.strains.strains[j]).voigt  # type: ignore[union-attr]
            o.failed.append(FailedStrain(index=j, strain_voigt=[float(x) for x in voigt], reason=reason))
    for o in outcomes:
        if o.error is None:
            _fit(o, settings)
        o.wall_s = (time.perf_counter() - t0) / max(len(outcomes), 1)
    report(len(outcomes), 0)
    return outcomes


def _fit(o: ElasticOutcome, settings: ElasticSettings) -> None:
    assert o.strains is not None and o.eq_stress_gpa is not None
    used = [j for j, s in enumerate(o.stresses_gpa) if s is not None]
    try:
        o.fit = fit_elastic_tensor(
            o.relaxed.structure,
            [o.strains.strains[j] for j in used],
            [o.strains.deformations[j] for j in used],
            [o.stresses_gpa[j] for j in used],  # type: ignore[misc]
            o.eq_stress_gpa,
            symprec=settings.symprec,
            max_residual_fraction=settings.max_residual_fraction,
        )
    except ValueError as exc:  # a whole strain mode failed: no tensor can be fitted
        o.error = f"fit impossible with {len(used)} of {len(o.stresses_gpa)} strained cells: {exc}"
        return
    if o.failed:
        o.fit.warnings.append(
            f"{len(o.failed)} of {len(o.stresses_gpa)} strained cells failed; fit used {len(used)}"
        )
    if not o.relaxed.converged:
        o.fit.warnings.append(
            f"tight relaxation did not reach fmax {settings.relax.fmax} eV/Å in {o.relaxed.n_steps} steps"
        )
    if o.relaxed.symmetry_changed:
        note = symmetry_change_note(
            o.relaxed.spacegroup_before,
            o.relaxed.spacegroup_after,
            # a P1 input has no symmetry to keep: its relaxation was unconstrained
            "during the relaxation"
            if o.relaxed.spacegroup_before == 1
            else "during the symmetrized relaxation",
            loose=o.input_loose,
        )
        o.fit.warnings.append(f"{note}; the tensor belongs to the relaxed structure")


def elastic_document(
    o: ElasticOutcome, fields: dict[str, Any], input_structure: Structure
) -> ElasticDocument:
    """The stored document of one outcome (failed ones carry their reason); ``fields`` from
    :func:`mlipflows.makers.base.provenance` on the relaxed structure."""
    s = o.relaxed.structure
    ok = o.error is None and o.fit is not None
    fit = o.fit
    stresses = [None if x is None else np.asarray(x).tolist() for x in o.stresses_gpa]
    fitting = None
    if o.strains is not None:
        fitting = ElasticFittingData(
            deformations=[d.tolist() for d in o.strains.deformations],
            strains=[e.tolist() for e in o.strains.strains],
            cauchy_stresses=stresses,
            equilibrium_stress=None if o.eq_stress_gpa is None else o.eq_stress_gpa.tolist(),
        )
    values: dict[str, Any] = {}
    if ok:
        values = {
            "elastic_tensor": fit.tensor.tolist(),
            "elastic_tensor_raw": fit.raw_tensor.tolist(),
            **{
                name: getattr(fit, name)
                for name in (
                    "k_voigt",
                    "k_reuss",
                    "k_vrh",
                    "g_voigt",
                    "g_reuss",
                    "g_vrh",
                    "youngs_modulus",
                    "poisson_ratio",
                    "universal_anisotropy",
                    "eigenvalues",
                    "born_stable",
                    "n_strains_used",
                    "warnings",
                )
            },
            "fit_residual": fit.residual_gpa,
            "fit_residual_fraction": fit.residual_fraction,
        }
    energy = o.relaxed.energy
    return ElasticDocument(
        **fields,
        state="successful" if ok else ("unphysical" if o.unphysical else "failed"),
        error=None if ok else o.error,
        timings=Timings(wall_s=o.wall_s),
        input_structure=input_structure.as_dict(),
        n_strains_total=len(o.strains.structures) if o.strains else 0,
        failed_strains=o.failed,
        relax_converged=o.relaxed.converged if o.relaxed.ok else False,
        spacegroup=o.relaxed.spacegroup_after,
        relax_n_steps=o.relaxed.n_steps,
        energy_per_atom=None if energy is None else energy / len(s),
        volume=float(s.volume),
        density=float(s.density),
        fitting_data=fitting,
        **values,
    )


@dataclass
class ElasticMaker(ChunkMaker):
    """Elastic tensors (C_ij, K, G, E, ν, A^U, Born stability) of a chunk of structures.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
        settings: relaxations, strain magnitudes, symmetrization tolerance.
    """

    name: str = "mlipflows elastic"
    settings: ElasticSettings = field(default_factory=ElasticSettings)
    document_class = ElasticDocument

    def recorded_settings(self) -> dict[str, Any]:
        return self.settings.recorded()

    @job(data=list(ElasticDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(
        self, structures: list[Structure], structure_ids: list[str] | None = None
    ) -> list[ElasticDocument]:
        """One :class:`ElasticDocument` per structure, in input order."""
        return self.run(structures, structure_ids)  # type: ignore[return-value]

    def compute(
        self, structures: list[Structure], potential: Potential, budget: BatchBudget, **_: Any
    ) -> list[ElasticOutcome]:
        return compute_elastic(structures, potential, self.settings, budget)

    def document(
        self, outcome: ElasticOutcome, structure_id: str, structure: Structure, potential: Potential
    ) -> ElasticDocument:
        doc = elastic_document(
            outcome, self.fields(outcome.relaxed.structure, structure_id, potential), structure
        )
        if doc.warnings or doc.error:
            log.warning("%s: %s", doc.structure_id, doc.error or "; ".join(doc.warnings))
        return doc


def elastic_flow(
    structures: Sequence[Structure],
    structure_ids: Sequence[str] | None = None,
    chunk_size: int = 32,
    maker: ElasticMaker | None = None,
) -> Flow:
    """Chunk jobs of ``chunk_size`` structures (each: 25 cells per structure in one batch)."""
    maker = maker or ElasticMaker()
    return relax_flow(structures, structure_ids, chunk_size, maker, name="mlipflows elastic")
