"""Cartesian steerable features of order l ≤ 2 and the operations that keep them equivariant.

Per atom and channel c we carry a scalar h_c, a vector v_c (l = 1, 3 numbers) and a symmetric
traceless 3×3 tensor t_c (l = 2, 5 independent numbers). Under x → R x with R ∈ O(3):
h → h, v → R v, t → R t Rᵀ. The only operations used on them here are

* channel mixing by a matrix W (acting on the channel index, never on the Cartesian indices),
* multiplication by invariant scalars (per atom/edge and channel),
* invariants from inner products: v·w, t:s = Σ_ab t_ab s_ab, rᵀ t r and norms,

all of which commute with every R ∈ O(3) (improper rotations too, since v and t here are polar:
built from r̂ and r̂ r̂ᵀ - I/3). No Clebsch–Gordan coupling of two steerable features into a
third is ever formed.
"""

from __future__ import annotations

import torch
from torch import nn


def edge_harmonics(unit: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(E, 3) unit vectors r̂ → (r̂ (E, 3), r̂ r̂ᵀ - I/3 (E, 3, 3)): the l = 1 and l = 2 parts."""
    eye = torch.eye(3, dtype=unit.dtype, device=unit.device)
    return unit, unit[:, :, None] * unit[:, None, :] - eye / 3.0


class ChannelMix(nn.Module):
    """y_c = Σ_d W_cd x_d over the channel axis 1 of (N, C, ...) steerable features (no bias)."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_out, n_in) / n_in**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("dc,nc...->nd...", self.weight.to(x.dtype), x)


def vector_norm2(v: torch.Tensor) -> torch.Tensor:
    """(N, C, 3) → (N, C) |v_c|²."""
    return (v * v).sum(-1)


def tensor_norm2(t: torch.Tensor) -> torch.Tensor:
    """(N, C, 3, 3) → (N, C) t_c : t_c (Frobenius)."""
    return (t * t).sum((-1, -2))


def project_vector(v: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """(E, C, 3), (E, 3) → (E, C) v_c · r̂."""
    return torch.einsum("eca,ea->ec", v, unit)


def project_tensor(t: torch.Tensor, unit: torch.Tensor) -> torch.Tensor:
    """(E, C, 3, 3), (E, 3) → (E, C) r̂ᵀ t_c r̂."""
    return torch.einsum("ea,ecab,eb->ec", unit, t, unit)
