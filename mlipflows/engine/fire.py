"""FIRE as pure tensor functions over a batch, one set of FIRE parameters per system.

Same update rule and defaults as ASE's ``FIRE`` (Bitzek et al., PRL 97, 170201 (2006), in the
ASE variant: velocity mixing before the MD step, step length capped at ``max_step`` over the
whole generalised coordinate vector of each system).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monty.json import MSONable

from mlipflows.engine.batch import segment_sum


@dataclass(frozen=True)
class FireParams(MSONable):
    """ASE defaults: dt 0.1, dtmax 1, maxstep 0.2 Å, Nmin 5, finc 1.1, fdec 0.5, a 0.1, fa 0.99."""

    dt_start: float = 0.1
    dt_max: float = 1.0
    max_step: float = 0.2
    n_min: int = 5
    f_inc: float = 1.1
    f_dec: float = 0.5
    alpha_start: float = 0.1
    f_alpha: float = 0.99


def per_system_dot(
    a_atoms: torch.Tensor,
    b_atoms: torch.Tensor,
    a_cell: torch.Tensor | None,
    b_cell: torch.Tensor | None,
    system_idx: torch.Tensor,
    n_systems: int,
) -> torch.Tensor:
    """⟨a, b⟩ per system over atom rows plus (optional) cell rows."""
    dot = segment_sum((a_atoms * b_atoms).sum(-1), system_idx, n_systems)
    if a_cell is not None and b_cell is not None:
        dot = dot + (a_cell * b_cell).sum((-1, -2))
    return dot


def fire_step(
    params: FireParams,
    g_atoms: torch.Tensor,
    g_cell: torch.Tensor | None,
    v_atoms: torch.Tensor,
    v_cell: torch.Tensor | None,
    dt: torch.Tensor,
    alpha: torch.Tensor,
    n_pos: torch.Tensor,
    first: torch.Tensor,
    system_idx: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One FIRE update in place on velocities and per-system scalars; returns the step Δx.

    ``g_*`` are generalised forces (−gradient); ``first`` marks systems whose velocity has not
    been initialised yet (ASE skips the mixing on its first step).
    """
    n_sys = dt.shape[0]
    vf = per_system_dot(g_atoms, v_atoms, g_cell, v_cell, system_idx, n_sys)
    g2 = per_system_dot(g_atoms, g_atoms, g_cell, g_cell, system_idx, n_sys)
    v2 = per_system_dot(v_atoms, v_atoms, v_cell, v_cell, system_idx, n_sys)
    downhill = (vf > 0.0) & ~first
    uphill = (vf <= 0.0) & ~first

    scale = torch.where(g2 > 0, torch.sqrt(v2) / torch.sqrt(g2).clamp_min(1e-300), torch.zeros_like(g2))
    mix_a = torch.where(downhill, alpha, torch.zeros_like(alpha))
    keep = torch.where(uphill, torch.zeros_like(alpha), 1.0 - mix_a)
    v_atoms.mul_(keep[system_idx, None]).add_(g_atoms * (mix_a * scale)[system_idx, None])
    if v_cell is not None and g_cell is not None:
        v_cell.mul_(keep[:, None, None]).add_(g_cell * (mix_a * scale)[:, None, None])

    grow = downhill & (n_pos > params.n_min)
    dt.copy_(torch.where(grow, torch.clamp(dt * params.f_inc, max=params.dt_max), dt))
    alpha.copy_(torch.where(grow, alpha * params.f_alpha, alpha))
    n_pos.copy_(torch.where(downhill, n_pos + 1, n_pos))
    dt.copy_(torch.where(uphill, dt * params.f_dec, dt))
    alpha.copy_(torch.where(uphill, torch.full_like(alpha, params.alpha_start), alpha))
    n_pos.copy_(torch.where(uphill, torch.zeros_like(n_pos), n_pos))
    first.zero_()

    v_atoms.add_(g_atoms * dt[system_idx, None])
    dr_atoms = v_atoms * dt[system_idx, None]
    dr_cell = None
    if v_cell is not None and g_cell is not None:
        v_cell.add_(g_cell * dt[:, None, None])
        dr_cell = v_cell * dt[:, None, None]
    norm = torch.sqrt(per_system_dot(dr_atoms, dr_atoms, dr_cell, dr_cell, system_idx, n_sys))
    cap = torch.where(norm > params.max_step, params.max_step / norm.clamp_min(1e-300), torch.ones_like(norm))
    dr_atoms = dr_atoms * cap[system_idx, None]
    if dr_cell is not None:
        dr_cell = dr_cell * cap[:, None, None]
    return dr_atoms, dr_cell
