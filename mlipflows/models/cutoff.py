"""Smooth cutoff envelopes: f(r) = 1 well inside, f(r_c) = f'(r_c) = f''(r_c) = 0.

A model whose every edge term carries such an envelope has energy, forces and force
derivatives continuous when a neighbour crosses r_c (needed for energy-conserving MD and for
phonons by finite differences).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def polynomial_envelope(x: torch.Tensor, p: int = 6) -> torch.Tensor:
    """u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^{p+1} - p(p+1)/2 x^{p+2} for x < 1, else 0.

    Klicpera et al. (DimeNet, 2020), eq. 8. With p ≥ 2 the value and the first two derivatives
    vanish at x = 1 (C² at the cutoff); u(0) = 1 and u = 1 - O(x^p) near 0.
    """
    xc = x.clamp(0.0, 1.0)
    u = (
        1.0
        - 0.5 * (p + 1) * (p + 2) * xc**p
        + p * (p + 2) * xc ** (p + 1)
        - 0.5 * p * (p + 1) * xc ** (p + 2)
    )
    return torch.where(x < 1.0, u, torch.zeros_like(u))


def cosine_switch(r: torch.Tensor, r_on: float | torch.Tensor, r_off: float | torch.Tensor) -> torch.Tensor:
    """1 below ``r_on``, 0 above ``r_off``, ((1 + cos πx)/2)² in between, x = (r - r_on)/(r_off - r_on).

    The square makes the curvature vanish at both ends too, so the switch is C².
    """
    x = ((r - r_on) / (r_off - r_on)).clamp(0.0, 1.0)
    return (0.5 * (1.0 + torch.cos(math.pi * x))) ** 2


class PolynomialCutoff(nn.Module):
    """:func:`polynomial_envelope` of r / r_c as a module (r in Å)."""

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        if p < 2:
            raise ValueError(f"polynomial envelope order p={p} is not C² at the cutoff; use p >= 2")
        self.cutoff, self.p = float(cutoff), int(p)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return polynomial_envelope(r / self.cutoff, self.p)
