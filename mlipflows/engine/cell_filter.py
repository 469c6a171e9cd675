"""Fréchet cell filter, batched: positions and log-deformation of the cell as one set of DOFs.

Follows ASE's ``FrechetCellFilter`` (B. Tadmor et al., PRB 59, 235 (1999); gradients of the
log-deformation as derived by lan496, used by ASE ≥ 3.23) so that our FIRE trajectories match
ASE's step for step. Per system s with reference cell C0 and current cell C (rows):

    F  = (C0⁻¹ C)ᵀ                    deformation gradient
    x_atoms = r F⁻ᵀ,  x_cell = log(F) · c         (c = exp_cell_factor = n_atoms)
    g_atoms = f F,    g_cell = L_exp(log(F)ᵀ, W F⁻ᵀ) / c,   W = −V σ (virial)

where L_exp(A, E) is the Fréchet derivative of the matrix exponential; we use its adjoint
identity ⟨L(A, E), G⟩ = ⟨E, L(Aᵀ, G)⟩ to get all nine components from one 6×6 exponential.
"""

from __future__ import annotations

from typing import Literal

import torch

CellMode = Literal["frechet", "hydrostatic", "fixed"]


def expm_frechet(a: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Batched Fréchet derivative L(A, E) of expm via the 2n×2n block-triangular exponential."""
    n = a.shape[-1]
    block = torch.zeros((*a.shape[:-2], 2 * n, 2 * n), dtype=a.dtype, device=a.device)
    block[..., :n, :n] = a
    block[..., n:, n:] = a
    block[..., :n, n:] = e
    return torch.linalg.matrix_exp(block)[..., :n, n:]


def cell_forces(
    stress: torch.Tensor,
    volume: torch.Tensor,
    cell_x: torch.Tensor,
    exp_cell_factor: torch.Tensor,
    mode: CellMode,
    no_tilt: bool = False,
) -> torch.Tensor:
    """Generalised forces on the log-deformation DOFs, (S, 3, 3).

    Args:
        stress: (S, 3, 3) Cauchy stress, eV/Å³ (ASE sign).
        volume: (S,) current volumes, Å³.
        cell_x: (S, 3, 3) current log(F)·c.
        exp_cell_factor: (S,) c.
        mode: "frechet" (full cell) or "hydrostatic" (isotropic strain only).
        no_tilt: keep the cell angles: the shear components of the virial are zeroed, as ASE's
            ``FrechetCellFilter(mask=[1, 1, 1, 0, 0, 0])`` does (the k_SRME κ protocol).
    """
    virial = -volume[:, None, None] * stress
    if mode == "hydrostatic":
        tr = virial.diagonal(dim1=1, dim2=2).sum(-1) / 3.0
        virial = tr[:, None, None] * torch.eye(3, dtype=virial.dtype, device=virial.device)
    if no_tilt:
        virial = virial * torch.eye(3, dtype=virial.dtype, device=virial.device)
    log_f = cell_x / exp_cell_factor[:, None, None]
    f = torch.linalg.matrix_exp(log_f)
    ucf_grad = virial @ torch.linalg.inv(f.transpose(1, 2))
    return expm_frechet(log_f.transpose(1, 2), ucf_grad) / exp_cell_factor[:, None, None]
