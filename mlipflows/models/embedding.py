"""Element embeddings: a learned vector per atomic number."""

from __future__ import annotations

import torch
from pymatgen.core import Element
from torch import nn

MAX_Z = 94


def atomic_numbers_of(elements: list[str]) -> list[int]:
    """Atomic numbers of element symbols (raises ValueError on an unknown symbol)."""
    return [Element(e).Z for e in elements]


class ElementEmbedding(nn.Module):
    """h_i = W[Z_i]: one trainable vector of ``n_channels`` per element Z = 0..94.

    The table covers every Z so that adding an element to a fine-tuning set needs no resizing;
    only the rows of elements seen in training move away from their random start.
    """

    def __init__(self, n_channels: int, max_z: int = MAX_Z) -> None:
        super().__init__()
        self.table = nn.Embedding(max_z + 1, n_channels)
        nn.init.normal_(self.table.weight, std=1.0)

    def forward(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        """(N,) int64 → (N, n_channels)."""
        return self.table(atomic_numbers)
