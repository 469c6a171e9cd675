"""Steps the phonon and κ Makers share: symmetric relaxation and batched supercell forces.

Where atomate2 makes one job per displaced supercell, a chunk job here relaxes all of its
structures in one batched relaxation and evaluates the displaced supercells of *all* of them
through one :func:`mlipflows.engine.static` call (the engine splits it into budgeted batches).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget, RelaxSettings, SystemResult, relax, static
from mlipflows.engine.symmetry import loose_spacegroup, spacegroup_number, symmetry_change_note
from mlipflows.phonons.force_cache import ForceCache
from mlipflows.potentials import Potential
from mlipflows.progress import report, report_task
from mlipflows.schemas.phonons import PhononSetup, RelaxSummary

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """One input structure after the (optional) relaxation.

    Attributes:
        structure: relaxed structure (the input one without relaxation or on failure).
        setup: relaxation summary and space groups, filled into the document.
        error: why the structure cannot go on (None = fine).
        warnings: things the user should know that did not stop the calculation.
        unphysical: the error is a failed sanity check (a model hole), not a crash.
    """

    structure: Structure
    setup: PhononSetup
    error: str | None = None
    warnings: list[str] | None = None
    unphysical: bool = False

    @property
    def state(self) -> str:
        """The document state when the structure cannot go on (``error`` is set)."""
        return "unphysical" if self.unphysical else "failed"


def relax_for_phonons(
    structures: Sequence[Structure],
    potential: Potential,
    budget: BatchBudget,
    settings: RelaxSettings | None,
    symprec: float = 1e-5,
    stage2: RelaxSettings | None = None,
) -> list[Prepared]:
    """Symmetry-preserving relaxation of every structure (``settings=None``: no relaxation).

    With ``stage2`` (unconstrained settings), every symmetric result is relaxed again without
    the constraint and that result is kept unless its space group (at ``symprec``) differs
    from the symmetric one, k_SRME's two-stage relaxation. A relaxation that does not converge
    or changes the space group is recorded in the document's setup and warnings; only engine
    failures stop the structure.
    """
    if settings is None:
        out = []
        for s in structures:
            sg = spacegroup_number(s, symprec)
            out.append(Prepared(s, PhononSetup(spacegroup_before=sg, spacegroup_after=sg), warnings=[]))
        return out
    results = relax(list(structures), potential, settings, budget=budget, progress=report)
    second: dict[int, SystemResult] = {}
    if stage2 is not None:
        ok = [i for i, r in enumerate(results) if r.ok]  # a hole in stage 1 never goes on
        # the same structures again: their steps count, they do not finish a second time
        relaxed = relax(
            [results[i].structure for i in ok],
            potential,
            stage2,
            budget=budget,
            progress=lambda finished, steps: report(0, steps),
        )
        second = dict(zip(ok, relaxed, strict=True))
    out = []
    for i, (s, r) in enumerate(zip(structures, results, strict=True)):
        final, n_steps, converged = r, r.n_steps, r.converged
        summary = RelaxSummary(converged=r.converged, n_steps=r.n_steps, fmax=settings.fmax)
        if i in second:
            r2 = second[i]
            summary.two_stage = True
            n_steps += r2.n_steps
            if r2.ok:  # an unphysical or failed second stage falls back to the symmetric result
                summary.stage2_spacegroup = spacegroup_number(r2.structure, symprec)
                summary.redirected_to_symmetric = summary.stage2_spacegroup != r.spacegroup_after
                if not summary.redirected_to_symmetric:
                    final, converged = r2, converged and r2.converged
        summary.converged, summary.n_steps = converged, n_steps
        summary.max_force = final.max_force
        summary.energy_per_atom = None if final.energy is None else final.energy / len(s)
        loose = None
        if r.symmetry_changed and (r.spacegroup_before or 0) <= 2:
            found = loose_spacegroup(s, symprec)
            loose = found[0] if found else None
        setup = PhononSetup(
            spacegroup_before=r.spacegroup_before,
            spacegroup_after=r.spacegroup_after,
            symmetry_changed=r.symmetry_changed,
            spacegroup_input_loose=loose,
            relax=summary,
        )
        warnings = []
        if r.ok and not converged:
            warnings.append(f"relaxation not converged to fmax={settings.fmax} eV/Å in {n_steps} steps")
        if r.symmetry_changed:
            warnings.append(symmetry_change_note(r.spacegroup_before, r.spacegroup_after, loose=loose))
        if summary.redirected_to_symmetric:
            warnings.append(
                f"the unconstrained second stage went to space group {summary.stage2_spacegroup}; "
                "the symmetric first-stage structure was kept"
            )
        error = None if r.ok else f"relaxation {r.state}: {r.reason}"
        out.append(Prepared(final.structure, setup, error, warnings, unphysical=r.unphysical is not None))
    return out


def relax_unless_refused(
    structures: Sequence[Structure],
    refusals: Sequence[str | None],
    potential: Potential,
    budget: BatchBudget,
    settings: RelaxSettings | None,
    symprec: float = 1e-5,
    stage2: RelaxSettings | None = None,
) -> list[Prepared]:
    """:func:`relax_for_phonons` on the structures whose refusal is None; the others fail with it.

    Used to refuse oversized supercells before a relaxation is spent on them.
    """
    todo = [i for i, r in enumerate(refusals) if r is None]
    relaxed = iter(
        relax_for_phonons([structures[i] for i in todo], potential, budget, settings, symprec, stage2)
    )
    return [
        next(relaxed) if r is None else Prepared(s, PhononSetup(), error=r, warnings=[])
        for s, r in zip(structures, refusals, strict=True)
    ]


class GroupForces(NamedTuple):
    """Forces (eV/Å) on every supercell of one structure, or why there are none."""

    forces: list[np.ndarray] | None
    error: str | None = None
    unphysical: bool = False


def supercell_forces(
    groups: Sequence[Sequence[Structure]],
    potential: Potential,
    budget: BatchBudget,
    cache: ForceCache | None = None,
) -> list[GroupForces]:
    """Forces (eV/Å) on every supercell of every group, from one batched engine call.

    Returns one :class:`GroupForces` per group: the forces of all its supercells, or None and
    the first bad supercell's reason when any of them failed or is unphysical. With ``cache``,
    supercells found there are not evaluated, and each batch's good forces are stored as soon
    as they exist (a stopped run resumes from them).
    """
    flat = [s for g in groups for s in g]
    cached = [cache.get(s) for s in flat] if cache is not None else [None] * len(flat)
    todo = [i for i, f in enumerate(cached) if f is None]
    if len(todo) < len(flat):
        log.info("%d of %d supercell forces from an interrupted run", len(flat) - len(todo), len(flat))

    def keep(batch: list[SystemResult]) -> None:
        for r in batch:
            if r.ok and cache is not None:
                cache.put(r.structure, np.asarray(r.forces))

    fresh: list[SystemResult] = []
    if todo:
        report_task("supercells", len(flat) - len(todo), len(flat))
        fresh = static(
            [flat[i] for i in todo],
            potential,
            compute_stress=False,
            budget=budget,
            progress=lambda n: report_task("supercells", n, len(flat)),
            on_batch=keep if cache is not None else None,
        )
    outcome: list[np.ndarray | SystemResult] = list(cached)  # type: ignore[arg-type]
    for i, r in zip(todo, fresh, strict=True):
        outcome[i] = r
    out: list[GroupForces] = []
    start = 0
    for g in groups:
        part = outcome[start : start + len(g)]
        start += len(g)
        bad = next(((k, r) for k, r in enumerate(part) if isinstance(r, SystemResult) and not r.ok), None)
        if bad is not None:
            k, r = bad
            out.append(GroupForces(None, f"displaced supercell {k} {r.state}: {r.reason}", r.error is None))
        else:
            out.append(GroupForces([r if isinstance(r, np.ndarray) else np.asarray(r.forces) for r in part]))
    return out
