"""Batched periodic neighbour lists (vesin's cell lists, one call per system).

The list is *full* (both i→j and j→i) and keeps periodic self-images (i == i with a non-zero
shift), which message-passing models need in small cells.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from vesin import NeighborList

from mlipflows.engine.batch import Batch


@dataclass
class Graph:
    """Edges of a batch.

    Attributes:
        edge_index: (2, E) int64 global atom indices (sender i, receiver j); the edge vector is
            r_j - r_i + shift @ cell.
        unit_shifts: (E, 3) integer lattice translations of atom j (as float of the batch dtype).
        edge_system: (E,) int64 system of each edge.
    """

    edge_index: torch.Tensor
    unit_shifts: torch.Tensor
    edge_system: torch.Tensor

    @property
    def n_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def shift_vectors(self, cell: torch.Tensor) -> torch.Tensor:
        """(E, 3) lattice translations S·cell of atom j, Å, differentiable in ``cell``."""
        return torch.einsum("ek,ekl->el", self.unit_shifts.to(cell.dtype), cell[self.edge_system])

    def edge_vectors(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """(E, 3) vectors r_j - r_i + S·cell, differentiable in ``positions`` and ``cell``."""
        i, j = self.edge_index
        return positions[j] - positions[i] + self.shift_vectors(cell)


def neighbor_list(batch: Batch, cutoff: float) -> Graph:
    """All pairs closer than ``cutoff`` (Å) in every system of ``batch``.

    Non-periodic directions use the given cell only as a bounding box; vesin needs a box
    that encloses the atoms, so for fully non-periodic systems we pass a zero box.
    """
    pos_all = batch.positions.detach().to("cpu", torch.float64).numpy()
    cells = batch.cell.detach().to("cpu", torch.float64).numpy()
    pbcs = batch.pbc.detach().cpu().numpy()
    counts = batch.n_atoms.cpu().numpy()
    offsets = np.concatenate([[0], np.cumsum(counts)])
    nl = NeighborList(cutoff=float(cutoff), full_list=True)
    eis, ejs, shifts, systems = [], [], [], []
    for s in range(batch.n_systems):
        start, stop = offsets[s], offsets[s + 1]
        pbc = pbcs[s]
        box = cells[s] if pbc.any() else np.zeros((3, 3))
        i, j, shift = nl.compute(pos_all[start:stop], box, [bool(p) for p in pbc], quantities="ijS")
        eis.append(i.astype(np.int64) + start)
        ejs.append(j.astype(np.int64) + start)
        shifts.append(shift)
        systems.append(np.full(len(i), s, dtype=np.int64))
    device = batch.device
    edge_index = torch.as_tensor(np.stack([np.concatenate(eis), np.concatenate(ejs)]), device=device)
    return Graph(
        edge_index=edge_index,
        unit_shifts=torch.as_tensor(np.concatenate(shifts), dtype=batch.positions.dtype, device=device),
        edge_system=torch.as_tensor(np.concatenate(systems), device=device),
    )
