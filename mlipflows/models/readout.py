"""Multi-head energy readout with per-head E0(Z), scale and shift, and the lone-atom guarantee.

Atomic energy of atom i in a structure labelled with head h (Batatia et al., MACE multi-head
fine-tuning, use one readout per level of theory):

    ε_i = E0[h, Z_i] + scale[h] · (y_h(x_i) - y_h(x_i^iso)) + (shift[h] + shift_Z[h, Z_i]) · c_i / c̄

y_h is the network output for head h, x_i the atom's final features and x_i^iso the features
the same model gives an atom of element Z_i with no neighbours, no charge and no potential.
c_i = Σ_j u(r_ij / r_c) is the smooth coordination number (0 for a lone atom) and c̄ the mean
coordination of the training set, so the shift is a per-neighbour baseline (shift_Z: one per
element, for E0 fixed at isolated atoms, where the network would otherwise have to learn each
element's whole cohesive energy from its neighbours, since any per-element constant in y
cancels against the lone atom's). Both correction
terms vanish for a lone atom, which therefore returns exactly E0[h, Z] (up to the model's
explicit terms, which also vanish there: ZBL and Coulomb need a partner).
"""

from __future__ import annotations

import torch
from torch import nn

from mlipflows.engine.batch import segment_sum
from mlipflows.models.cutoff import polynomial_envelope
from mlipflows.models.embedding import MAX_Z
from mlipflows.models.mlp import mlp


def smooth_coordination(
    lengths: torch.Tensor, edge_index: torch.Tensor, n_atoms: int, cutoff: float
) -> torch.Tensor:
    """(N,) c_i = Σ_j u(r_ij / r_c) with the p = 6 polynomial envelope u (0 for a lone atom)."""
    return segment_sum(polynomial_envelope(lengths / cutoff), edge_index[0], n_atoms)


class MultiHeadReadout(nn.Module):
    """Per-atom energies, eV, for ``n_heads`` heads sharing the features but not the last layers.

    E0, scale and shift are buffers set from data (least squares, force RMS), not trained.
    """

    def __init__(self, n_features: int, heads: list[str], hidden: int = 32, max_z: int = MAX_Z) -> None:
        super().__init__()
        self.heads = list(heads)
        n = len(self.heads)
        self.net = mlp(n_features, [hidden], n)
        self.register_buffer("e0", torch.zeros(n, max_z + 1))
        self.register_buffer("scale", torch.ones(n))
        self.register_buffer("shift", torch.zeros(n))
        self.register_buffer("shift_z", torch.zeros(n, max_z + 1))
        self.register_buffer("mean_coordination", torch.ones(()))

    def head_index(self, name: str | None) -> int:
        """Index of head ``name`` (None → the first head)."""
        if name is None:
            return 0
        if name not in self.heads:
            raise KeyError(f"unknown head {name!r}; this model has heads {self.heads}")
        return self.heads.index(name)

    def forward(
        self,
        features: torch.Tensor,
        isolated_features: torch.Tensor,
        atomic_numbers: torch.Tensor,
        atom_head: torch.Tensor,
        coordination: torch.Tensor,
    ) -> torch.Tensor:
        """(N,) atomic energies, eV.

        Args:
            features: (N, F) final atomic features.
            isolated_features: (N, F) features of a lone atom of the same element.
            atomic_numbers: (N,) int64.
            atom_head: (N,) int64 head index of each atom's structure.
            coordination: (N,) smooth coordination numbers c_i.
        """
        y = self.net(features) - self.net(isolated_features)
        y = y.gather(1, atom_head[:, None])[:, 0]
        dtype = features.dtype
        e0 = self.e0.to(dtype)[atom_head, atomic_numbers]
        per_neighbour = coordination / self.mean_coordination.to(dtype)
        shift = self.shift.to(dtype)[atom_head] + self.shift_z.to(dtype)[atom_head, atomic_numbers]
        return e0 + self.scale.to(dtype)[atom_head] * y + shift * per_neighbour
