"""Radial bases: expand an interatomic distance r (Å) into a fixed set of smooth functions."""

from __future__ import annotations

import math

import torch
from torch import nn


class BesselBasis(nn.Module):
    """Spherical Bessel functions of order 0 on [0, r_c] (DimeNet, Gasteiger et al. 2020, eq. 7).

    b_n(r) = sqrt(2 / r_c) · sin(n π r / r_c) / r, n = 1..n_basis. The frequencies n π / r_c are
    trainable when ``trainable`` is set (as in NequIP/MACE).
    """

    def __init__(self, cutoff: float, n_basis: int = 8, trainable: bool = False) -> None:
        super().__init__()
        self.cutoff, self.n_basis = float(cutoff), int(n_basis)
        # built in float64 so that a float64 model has sin(nπ) = 0 at r_c to round-off
        freq = torch.arange(1, n_basis + 1, dtype=torch.float64) * math.pi / cutoff
        if trainable:
            self.frequencies = nn.Parameter(freq)
        else:
            self.register_buffer("frequencies", freq)
        self.prefactor = math.sqrt(2.0 / cutoff)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """(E,) distances, Å → (E, n_basis)."""
        r = r[:, None]
        return self.prefactor * torch.sin(self.frequencies.to(r.dtype) * r) / r


class GaussianBasis(nn.Module):
    """Gaussians exp(-(r - μ_n)² / 2w²) with centres μ_n evenly spaced on [r_min, r_c], Å."""

    def __init__(
        self, cutoff: float, n_basis: int = 16, r_min: float = 0.0, width: float | None = None
    ) -> None:
        super().__init__()
        self.cutoff, self.n_basis = float(cutoff), int(n_basis)
        centres = torch.linspace(r_min, cutoff, n_basis, dtype=torch.get_default_dtype())
        self.register_buffer("centres", centres)
        # default width: the centre spacing, so neighbouring Gaussians overlap at e^{-1/2}
        self.width = float(width if width is not None else (cutoff - r_min) / max(n_basis - 1, 1))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """(E,) distances, Å → (E, n_basis)."""
        d = r[:, None] - self.centres.to(r.dtype)
        return torch.exp(-0.5 * (d / self.width) ** 2)
