"""Choose how many structures share one batched call, from an atom and an edge budget."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlipflows.potentials.base import Potential

# Rough per-edge memory of a forward+backward pass of a mid-sized GNN (SevenNet-0: ~4 kB per
# edge in float32 with autograd buffers); used only to size GPU batches from free memory.
_BYTES_PER_EDGE = 4096


@dataclass(frozen=True)
class BatchBudget:
    """Upper limits for one batched call: total atoms and total estimated neighbour pairs."""

    max_atoms: int = 4096
    max_edges: int = 250_000

    @classmethod
    def for_potential(cls, potential: Potential, memory_fraction: float = 0.6) -> BatchBudget:
        """A default budget for the potential's device (GPU: from free memory)."""
        if potential.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(potential.device)
            edges = int(free * memory_fraction / _BYTES_PER_EDGE)
            return cls(max_atoms=max(edges // 20, 1024), max_edges=max(edges, 50_000))
        # On CPU throughput saturates early; moderate batches keep memory low and swaps frequent.
        return cls()

    def fits(self, atoms: int, edges: float, new_atoms: int, new_edges: float, scales: str) -> bool:
        if atoms + new_atoms > self.max_atoms:
            return False
        return scales != "n_edges" or edges + new_edges <= self.max_edges
