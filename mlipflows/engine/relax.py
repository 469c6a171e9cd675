"""Batched FIRE relaxation with a Fréchet cell filter and in-flight swapping.

Every system keeps its own FIRE state and convergence test; a system leaves the batch as soon
as it converges (or fails, or reaches ``max_steps``) and the next waiting structure takes its
place, so the batch stays full until the queue is empty.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from monty.json import MSONable
from pymatgen.core import Lattice, Structure

from mlipflows.engine.autobatch import BatchBudget
from mlipflows.engine.batch import Batch
from mlipflows.engine.cell_filter import CellMode, cell_forces
from mlipflows.engine.evaluate import OutOfMemoryMemo, guarded_evaluate
from mlipflows.engine.fire import FireParams, fire_step
from mlipflows.engine.results import SystemResult
from mlipflows.engine.sanity import SanityGuard, SanityLimits
from mlipflows.engine.symmetry import (
    BatchedSymmetry,
    SymmetryOps,
    find_symmetry,
    spacegroup_number,
    symmetrize_structure,
)
from mlipflows.engine.validate import check_structure, estimate_edges
from mlipflows.potentials.base import Potential, PotentialOutput


@dataclass(frozen=True)
class RelaxSettings(MSONable):
    """Relaxation settings: the one relaxation concept, nested in every Maker that relaxes.

    Makers hold one (``RelaxMaker.relax``, ``PhononMaker.relax``, ``ElasticSettings.relax``,
    ``RankingMaker.relax``, a campaign stage's ``relax``) and derive variants with
    ``dataclasses.replace`` (e.g. ``replace(settings, symmetrize=True)``).

    Attributes:
        fmax: convergence threshold on the largest generalised force row, eV/Å (ASE's rule:
            atom forces and, with a cell filter, the cell's generalised forces).
        max_steps: optimizer steps before a structure is stored as not converged.
        cell_filter: "frechet" (positions + full cell), "hydrostatic" (positions + volume) or
            "fixed" (positions only).
        fire: FIRE parameters (ASE defaults).
        ase_convergence: test only ASE's generalised forces (f·F for atoms, plus the cell rows),
            reproducing ASE's step counts exactly. By default the raw atomic forces must also be
            below ``fmax``: after a large cell change f·F can pass while |f| does not.
        symmetrize: keep the input's space group: the start structure is projected onto its
            symmetric form, and forces and stress are symmetrized every step (ASE's
            ``FixSymmetry``, batched). The space group is recorded before and after on the
            result (``spacegroup_before``/``spacegroup_after``); a change is flagged there.
            Use it with tight ``fmax`` (down to 1e-4 eV/Å) for phonons and elastic constants.
        symprec: symmetry tolerance for finding and checking the space group, Å.
        min_volume_per_atom: a cell that shrinks below this many Å³ per atom (the densest
            solids at ambient pressure have ~5) is stopped as collapsed, with the reason on its
            result. A collapsing cell's neighbour count grows as 1/V: left running, one bad
            candidate fills the memory of the whole campaign.
        min_volume_fraction: likewise, a cell that shrinks below this fraction of its start
            volume is stopped as collapsed.
        no_tilt: relax cell lengths but keep the angles (ASE's Fréchet filter with the mask
            [1, 1, 1, 0, 0, 0], as the k_SRME κ protocol does).
        sanity: limits of the physical sanity checks (:mod:`mlipflows.engine.sanity`): a
            relaxation that falls into a model hole is stopped and stored as unphysical;
            None switches the checks off (only for the elemental references themselves).
    """

    fmax: float = 0.05
    max_steps: int = 500
    cell_filter: CellMode = "frechet"
    fire: FireParams = field(default_factory=FireParams)
    ase_convergence: bool = False
    symmetrize: bool = False
    symprec: float = 1e-5
    min_volume_per_atom: float = 2.0
    min_volume_fraction: float = 0.05
    no_tilt: bool = False
    sanity: SanityLimits | None = field(default_factory=SanityLimits)

    def __post_init__(self) -> None:
        # a non-positive fmax can never converge: every structure would run all its steps and
        # be stored as not converged; zero steps would store the unrelaxed input as relaxed
        if not self.fmax > 0:
            raise ValueError(f"fmax must be > 0 eV/Å (got {self.fmax})")
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be ≥ 1 (got {self.max_steps}); use a static evaluation")
        if self.cell_filter not in ("frechet", "hydrostatic", "fixed"):
            raise ValueError(f"cell_filter must be frechet, hydrostatic or fixed (got {self.cell_filter!r})")

    def record(self) -> dict[str, Any]:
        """What a result stores about its relaxation (and its identity): the optimizer, fmax,
        max_steps, cell filter, and every other setting that differs from the default."""
        out: dict[str, Any] = {
            "optimizer": "FIRE",
            "fmax": self.fmax,
            "max_steps": self.max_steps,
            "cell_filter": self.cell_filter,
        }
        default = RelaxSettings()
        for name in ("ase_convergence", "symmetrize", "symprec", "no_tilt"):
            if getattr(self, name) != getattr(default, name):
                out[name] = getattr(self, name)
        return out


class _Active:
    """The systems currently in the batch, with their optimizer state (float64, on device)."""

    def __init__(self, device: torch.device, relax_cell: bool) -> None:
        f64 = dict(dtype=torch.float64, device=device)
        self.device, self.relax_cell = device, relax_cell
        self.pos = torch.zeros((0, 3), **f64)
        self.z = torch.zeros(0, dtype=torch.long, device=device)
        self.sys = torch.zeros(0, dtype=torch.long, device=device)
        self.v_atoms = torch.zeros((0, 3), **f64)
        self.cell = torch.zeros((0, 3, 3), **f64)
        self.orig_cell = torch.zeros((0, 3, 3), **f64)
        self.cell_x = torch.zeros((0, 3, 3), **f64)
        self.v_cell = torch.zeros((0, 3, 3), **f64)
        self.dt = torch.zeros(0, **f64)
        self.alpha = torch.zeros(0, **f64)
        self.ecf = torch.zeros(0, **f64)
        self.n_pos = torch.zeros(0, dtype=torch.long, device=device)
        self.first = torch.zeros(0, dtype=torch.bool, device=device)
        self.ids: list[int] = []
        self.n_steps: list[int] = []
        self.t_start: list[float] = []
        # per-system space-group operations (symmetrized relaxations only)
        self.ops: list[SymmetryOps] = []
        self.sym: BatchedSymmetry | None = None

    @property
    def n(self) -> int:
        return len(self.ids)

    def batch(self) -> Batch:
        pbc = torch.ones((self.n, 3), dtype=torch.bool, device=self.device)
        return Batch(self.pos, self.z, self.sys, self.cell, pbc)

    def add(
        self,
        structures: list[Structure],
        ids: list[int],
        fire: FireParams,
        ops: list[SymmetryOps] | None = None,
    ) -> None:
        if ops is not None:
            self.ops += ops
            self.sym = BatchedSymmetry(self.ops, self.device)
        b = Batch.from_structures(structures, device=self.device)
        n_new = b.n_systems
        self.sys = torch.cat([self.sys, b.system_idx + self.n])
        self.pos = torch.cat([self.pos, b.positions])
        self.z = torch.cat([self.z, b.atomic_numbers])
        self.v_atoms = torch.cat([self.v_atoms, torch.zeros_like(b.positions)])
        self.cell = torch.cat([self.cell, b.cell])
        self.orig_cell = torch.cat([self.orig_cell, b.cell.clone()])
        self.cell_x = torch.cat([self.cell_x, torch.zeros_like(b.cell)])
        self.v_cell = torch.cat([self.v_cell, torch.zeros_like(b.cell)])
        self.dt = torch.cat(
            [self.dt, torch.full((n_new,), fire.dt_start, dtype=torch.float64, device=self.device)]
        )
        self.alpha = torch.cat(
            [
                self.alpha,
                torch.full((n_new,), fire.alpha_start, dtype=torch.float64, device=self.device),
            ]
        )
        self.ecf = torch.cat([self.ecf, b.n_atoms.double()])
        self.n_pos = torch.cat([self.n_pos, torch.zeros(n_new, dtype=torch.long, device=self.device)])
        self.first = torch.cat([self.first, torch.ones(n_new, dtype=torch.bool, device=self.device)])
        self.ids += ids
        self.n_steps += [0] * n_new
        self.t_start += [time.perf_counter()] * n_new

    def keep(self, keep: list[bool]) -> None:
        mask = torch.as_tensor(keep, dtype=torch.bool, device=self.device)
        atom_mask = mask[self.sys]
        remap = torch.cumsum(mask.long(), 0) - 1
        self.sys = remap[self.sys[atom_mask]]
        for name in ("pos", "z", "v_atoms"):
            setattr(self, name, getattr(self, name)[atom_mask])
        for name in (
            "cell",
            "orig_cell",
            "cell_x",
            "v_cell",
            "dt",
            "alpha",
            "ecf",
            "n_pos",
            "first",
        ):
            setattr(self, name, getattr(self, name)[mask])
        self.ids = [i for i, k in zip(self.ids, keep, strict=True) if k]
        self.n_steps = [i for i, k in zip(self.n_steps, keep, strict=True) if k]
        self.t_start = [i for i, k in zip(self.t_start, keep, strict=True) if k]
        if self.sym is not None:
            self.ops = [o for o, k in zip(self.ops, keep, strict=True) if k]
            self.sym = BatchedSymmetry(self.ops, self.device) if self.ops else None


def relax(
    structures: Sequence[Structure],
    potential: Potential,
    settings: RelaxSettings | None = None,
    budget: BatchBudget | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[SystemResult]:
    """Relax every structure; returns one :class:`SystemResult` per input, in input order.

    Args:
        structures: pymatgen Structures (periodic).
        potential: a loaded potential.
        settings: fmax, max_steps, cell filter, FIRE parameters.
        budget: atoms/edges per batched call (default from the potential's device).
        progress: called after each step as ``progress(n_finished, n_steps_this_call)``.
    """
    settings = settings or RelaxSettings()
    budget = budget or BatchBudget.for_potential(potential)
    relax_cell = settings.cell_filter != "fixed"
    results = [SystemResult(index=i, structure=s) for i, s in enumerate(structures)]
    queue: deque[int] = deque()
    for r in results:
        r.error = check_structure(r.structure, potential)
        if r.error is None:
            queue.append(r.index)
        elif progress:
            progress(1, 0)
    edges = {i: estimate_edges(structures[i], potential.cutoff) for i in queue}
    active = _Active(potential.device, relax_cell)
    ops: dict[int, SymmetryOps] | None = None
    if settings.symmetrize:
        ops = {i: find_symmetry(structures[i], settings.symprec) for i in queue}
        structures = list(structures)
        for i, o in ops.items():
            results[i].spacegroup_before = o.spacegroup
            # start exactly on the symmetric structure so that round-off cannot break it
            structures[i] = symmetrize_structure(structures[i], o)
    guard = None if settings.sanity is None else SanityGuard(potential, structures, settings.sanity)
    memo = OutOfMemoryMemo()

    while queue or active.n:
        _refill(active, queue, structures, edges, potential, budget, settings.fire, ops)
        if relax_cell and _stop_collapsed(active, results, structures, settings, progress):
            continue
        batch = active.batch()
        out, errors = guarded_evaluate(potential, batch, relax_cell, memo)
        if active.sym is not None:
            r_c = active.sym.cartesian_rotations(active.cell)
            out = PotentialOutput(
                energy=out.energy,
                forces=active.sym.forces(out.forces, active.cell, r_c),
                stress=None if out.stress is None else active.sym.stress(out.stress, active.cell, r_c),
            )
        volume = torch.linalg.det(active.cell).abs()
        deform = torch.linalg.matrix_exp(active.cell_x / active.ecf[:, None, None])
        g_atoms = torch.einsum("ni,nij->nj", out.forces, deform[active.sys])
        g_cell = None
        if relax_cell:
            stress = torch.nan_to_num(out.stress)
            g_cell = cell_forces(
                stress, volume, active.cell_x, active.ecf, settings.cell_filter, settings.no_tilt
            )
        row_max = segment_max(torch.nan_to_num(g_atoms, nan=np.inf).norm(dim=1), active.sys, active.n)
        raw_max = segment_max(torch.nan_to_num(out.forces, nan=np.inf).norm(dim=1), active.sys, active.n)
        if not settings.ase_convergence:
            row_max = torch.maximum(row_max, raw_max)
        if g_cell is not None:
            row_max = torch.maximum(row_max, g_cell.norm(dim=2).amax(1))
        converged = (row_max < settings.fmax).tolist()
        energies = out.energy.tolist()
        max_forces = raw_max.tolist()

        keep, finished = [], 0
        forces_split = None
        for s, idx in enumerate(active.ids):
            r = results[idx]
            hole = None
            if errors[s] is None:
                r.trajectory.append(energies[s])
                if guard is not None:
                    step = active.n_steps[s]
                    hole = guard.during(idx, structures[idx], energies[s], max_forces[s], step)
            done = (
                errors[s] is not None
                or hole is not None
                or converged[s]
                or active.n_steps[s] >= settings.max_steps
            )
            keep.append(not done)
            if not done:
                continue
            finished += 1
            if forces_split is None:
                forces_split = torch.split(out.forces.cpu(), batch.n_atoms.tolist())
            _finish(r, s, active, out, forces_split, errors[s], converged[s] and hole is None)
            if r.error is None and guard is not None:
                r.unphysical = hole or guard.final(r.structure, r.energy, r.max_force, relaxed=True)
            if settings.symmetrize and r.error is None:
                r.spacegroup_after = spacegroup_number(r.structure, settings.symprec)
        if progress:
            progress(finished, 1)
        if not any(keep):
            active.keep(keep)
            continue
        if not all(keep):
            keep_t = torch.as_tensor(keep, device=g_atoms.device)
            g_atoms = g_atoms[keep_t[active.sys]]
            g_cell = None if g_cell is None else g_cell[keep_t]
            active.keep(keep)

        dr_atoms, dr_cell = fire_step(
            settings.fire,
            g_atoms,
            g_cell,
            active.v_atoms,
            active.v_cell if relax_cell else None,
            active.dt,
            active.alpha,
            active.n_pos,
            active.first,
            active.sys,
        )
        if relax_cell and dr_cell is not None:
            old = torch.linalg.matrix_exp(active.cell_x / active.ecf[:, None, None])
            x_atoms = torch.einsum(
                "ni,nij->nj", active.pos, torch.linalg.inv(old.transpose(1, 2))[active.sys]
            )
            active.cell_x = active.cell_x + dr_cell
            new = torch.linalg.matrix_exp(active.cell_x / active.ecf[:, None, None])
            active.pos = torch.einsum("ni,nij->nj", x_atoms + dr_atoms, new.transpose(1, 2)[active.sys])
            active.cell = active.orig_cell @ new.transpose(1, 2)
        else:
            active.pos = active.pos + dr_atoms
        active.n_steps = [n + 1 for n in active.n_steps]
    return results


def _stop_collapsed(
    active: _Active,
    results: list[SystemResult],
    structures: Sequence[Structure],
    settings: RelaxSettings,
    progress: Callable[[int, int], None] | None,
) -> bool:
    """Finish (as unphysical) every system whose cell collapsed; True if any did.

    The collapsed structure and its last energy are kept on the result for inspection.
    """
    volume = torch.linalg.det(active.cell).abs()
    start = torch.linalg.det(active.orig_cell).abs()
    per_atom = volume / active.ecf  # ecf is the atom count
    bad = (per_atom < settings.min_volume_per_atom) | (volume < settings.min_volume_fraction * start)
    if not bool(bad.any()):
        return False
    for s in torch.nonzero(bad).flatten().tolist():
        r = results[active.ids[s]]
        r.n_steps = active.n_steps[s]
        r.wall_time = time.perf_counter() - active.t_start[s]
        r.structure = _structure_of(active, s, structures[active.ids[s]])
        r.energy = r.trajectory[-1] if r.trajectory else None
        r.unphysical = (
            f"cell collapsed after {r.n_steps} steps: {float(per_atom[s]):.2f} Å³/atom, "
            f"{float(volume[s] / start[s]):.0%} of the start volume; the model has no repulsion "
            "for this structure (check the candidate, use the model with +zbl, or a model trained "
            "on these elements)"
        )
    if progress:
        progress(int(bad.sum()), 0)
    active.keep((~bad).tolist())
    return True


def _structure_of(active: _Active, s: int, like: Structure) -> Structure:
    """System ``s`` of the batch as a pymatgen Structure (site properties of ``like``)."""
    mask = active.sys == s
    return Structure(
        Lattice(active.cell[s].cpu().numpy()),
        active.z[mask].cpu().tolist(),
        active.pos[mask].cpu().numpy(),
        coords_are_cartesian=True,
        site_properties=like.site_properties or None,
    )


def segment_max(values: torch.Tensor, index: torch.Tensor, n_segments: int) -> torch.Tensor:
    out = torch.full((n_segments,), -np.inf, dtype=values.dtype, device=values.device)
    return out.scatter_reduce(0, index, values, reduce="amax", include_self=True)


def _refill(
    active: _Active,
    queue: deque[int],
    structures: Sequence[Structure],
    edges: dict[int, float],
    potential: Potential,
    budget: BatchBudget,
    fire: FireParams,
    ops: dict[int, SymmetryOps] | None = None,
) -> None:
    n_atoms = int(active.pos.shape[0])
    n_edges = sum(edges[i] for i in active.ids)
    new: list[int] = []
    while queue:
        i = queue[0]
        n, e = len(structures[i]), edges[i]
        if (active.n or new) and not budget.fits(n_atoms, n_edges, n, e, potential.memory_scales_with):
            break
        new.append(queue.popleft())
        n_atoms, n_edges = n_atoms + n, n_edges + e
    if new:
        new_ops = None if ops is None else [ops[i] for i in new]
        active.add([structures[i] for i in new], new, fire, new_ops)


def _finish(
    r: SystemResult,
    s: int,
    active: _Active,
    out: PotentialOutput,
    forces_split: tuple[torch.Tensor, ...],
    error: str | None,
    converged: bool,
) -> None:
    r.n_steps = active.n_steps[s]
    r.wall_time = time.perf_counter() - active.t_start[s]
    if error is not None:
        r.error = error
        return
    r.structure = _structure_of(active, s, r.structure)
    r.energy = float(out.energy[s])
    # copies: a view would keep the whole batch's tensor alive for every finished result
    r.forces = forces_split[s].numpy().copy()
    r.stress = None if out.stress is None else out.stress[s].cpu().numpy().copy()
    r.converged = bool(converged)
