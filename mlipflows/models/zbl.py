"""Ziegler-Biersack-Littmark (ZBL) short-range repulsion with learnable screening.

E_ZBL = ½ Σ_{i≠j} k_e Z_i Z_j / r_ij · φ(r_ij / a_ij) · u(r_ij / r_max,ij)

with the universal screening length a_ij = 0.46850 Å / (Z_i^0.23 + Z_j^0.23) and screening
function φ(x) = Σ_k c_k exp(-d_k x) (Ziegler, Biersack, Littmark, *The Stopping and Range of
Ions in Solids*, 1985). The c_k start at the universal values (0.18175, 0.50986, 0.28022,
0.02817) and stay positive with Σ c_k = 1 (a softmax), so the bare Coulomb limit
E → k_e Z_i Z_j / r at r → 0 holds whatever training does; the d_k (3.19980, 0.94229, 0.40290,
0.20162) stay positive through a log parametrisation. u is the C² polynomial envelope that
switches the repulsion off at r_max = f · (R_cov,i + R_cov,j) (covalent radii of Cordero et al.
2008 as tabulated by ASE; f = 1 by default, as in MACE's ZBL basis).
"""

from __future__ import annotations

import torch
from ase.data import covalent_radii
from torch import nn

from mlipflows.engine.batch import segment_sum
from mlipflows.models.cutoff import polynomial_envelope
from mlipflows.models.electrostatics.coulomb import COULOMB_EV_A
from mlipflows.models.embedding import MAX_Z

ZBL_C = (0.18175, 0.50986, 0.28022, 0.02817)
ZBL_D = (3.19980, 0.94229, 0.40290, 0.20162)
ZBL_A0 = 0.46850  # Å (0.8854 · Bohr radius)


class ZBLRepulsion(nn.Module):
    """Pairwise ZBL energy per structure, eV, switched off near the covalent-radius sum."""

    def __init__(self, radius_factor: float = 1.0, p: int = 6, trainable: bool = True) -> None:
        super().__init__()
        self.radius_factor, self.p = float(radius_factor), int(p)
        logits = torch.log(torch.tensor(ZBL_C))
        log_d = torch.log(torch.tensor(ZBL_D))
        if trainable:
            self.c_logits, self.log_d = nn.Parameter(logits), nn.Parameter(log_d)
        else:
            self.register_buffer("c_logits", logits)
            self.register_buffer("log_d", log_d)
        self.register_buffer("radii", torch.as_tensor(covalent_radii[: MAX_Z + 1], dtype=torch.float32))

    def screening(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x) for reduced distances x = r / a (any shape)."""
        c = torch.softmax(self.c_logits.to(x.dtype), dim=0)
        d = torch.exp(self.log_d.to(x.dtype))
        return (c * torch.exp(-d * x[..., None])).sum(-1)

    def pair_energy(self, r: torch.Tensor, zi: torch.Tensor, zj: torch.Tensor) -> torch.Tensor:
        """(E,) switched ZBL energy of each pair, eV (r in Å; each unordered pair once)."""
        dtype = r.dtype
        zf_i, zf_j = zi.to(dtype), zj.to(dtype)
        a = ZBL_A0 / (zf_i**0.23 + zf_j**0.23)
        r_max = self.radius_factor * (self.radii.to(dtype)[zi] + self.radii.to(dtype)[zj])
        bare = COULOMB_EV_A * zf_i * zf_j / r
        return bare * self.screening(r / a) * polynomial_envelope(r / r_max, self.p)

    def forward(
        self,
        lengths: torch.Tensor,
        edge_index: torch.Tensor,
        atomic_numbers: torch.Tensor,
        edge_system: torch.Tensor,
        n_systems: int,
    ) -> torch.Tensor:
        """(S,) ZBL energy per structure, eV, from a full (both directions) edge list."""
        i, j = edge_index
        pair = self.pair_energy(lengths, atomic_numbers[i], atomic_numbers[j])
        return 0.5 * segment_sum(pair, edge_system, n_systems)
