"""Single-point energies, forces and stresses for many structures, in budgeted batches."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from pymatgen.core import Structure

from mlipflows.engine.autobatch import BatchBudget
from mlipflows.engine.batch import Batch
from mlipflows.engine.evaluate import OutOfMemoryMemo, guarded_evaluate
from mlipflows.engine.results import SystemResult
from mlipflows.engine.sanity import SanityGuard, SanityLimits
from mlipflows.engine.validate import check_structure, estimate_edges
from mlipflows.potentials.base import Potential

SANITY = SanityLimits()


def plan_batches(
    structures: Sequence[Structure],
    indices: Sequence[int],
    potential: Potential,
    budget: BatchBudget,
) -> list[list[int]]:
    """Greedy consecutive grouping of ``indices`` under ``budget`` (at least one per group)."""
    groups: list[list[int]] = []
    cur: list[int] = []
    atoms = edges = 0.0
    for i in indices:
        n, e = len(structures[i]), estimate_edges(structures[i], potential.cutoff)
        if cur and not budget.fits(int(atoms), edges, n, e, potential.memory_scales_with):
            groups.append(cur)
            cur, atoms, edges = [], 0.0, 0.0
        cur.append(i)
        atoms, edges = atoms + n, edges + e
    if cur:
        groups.append(cur)
    return groups


def static(
    structures: Sequence[Structure],
    potential: Potential,
    compute_stress: bool = True,
    budget: BatchBudget | None = None,
    progress: Callable[[int], None] | None = None,
    sanity: SanityLimits | None = SANITY,
    on_batch: Callable[[list[SystemResult]], None] | None = None,
) -> list[SystemResult]:
    """Evaluate every structure once; bad structures come back with ``error`` set.

    Args:
        structures: pymatgen Structures (periodic).
        potential: a loaded potential.
        compute_stress: also return stresses (eV/Å³).
        budget: batch limits (default from the potential's device).
        progress: called with the number of structures finished after each batch.
        sanity: limits of the physical sanity checks; a result that fails one comes back with
            ``unphysical`` set (None: no checks).
        on_batch: called with each batch's finished results as soon as they exist (e.g. to
            keep them on disk, so a stopped run does not redo them).
    """
    budget = budget or BatchBudget.for_potential(potential)
    results = [SystemResult(index=i, structure=s) for i, s in enumerate(structures)]
    good = []
    for r in results:
        r.error = check_structure(r.structure, potential)
        if r.error is None:
            good.append(r.index)
        elif progress:
            progress(1)
    guard = None if sanity is None or not good else SanityGuard(potential, structures, sanity)
    memo = OutOfMemoryMemo()
    for group in plan_batches(structures, good, potential, budget):
        t0 = time.perf_counter()
        batch = Batch.from_structures([structures[i] for i in group], device=potential.device)
        out, errors = guarded_evaluate(potential, batch, compute_stress, memo)
        forces = torch.split(out.forces.cpu(), batch.n_atoms.tolist())
        dt = time.perf_counter() - t0
        for k, i in enumerate(group):
            r = results[i]
            r.wall_time = dt
            r.error = errors[k]
            if r.error is None:
                r.energy = float(out.energy[k])
                r.forces = forces[k].numpy()
                r.stress = None if out.stress is None else np.asarray(out.stress[k].cpu())
                r.converged = True
                r.trajectory = [r.energy]
                if guard is not None:
                    r.unphysical = guard.final(r.structure, r.energy, r.max_force, relaxed=False)
        if on_batch:
            on_batch([results[i] for i in group])
        if progress:
            progress(len(group))
    return results
