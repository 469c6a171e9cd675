"""Choose how many structures share one batched call, from an atom and an edge budget."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlipflows.potentials.base import Potential


@dataclass(frozen=True)
class BatchBudget:
    """Upper limits for one batched call: total atoms and total estimated neighbour pairs."""

    max_atoms: int = 4096
    max_edges: int = 50_000

    @classmethod
    def for_potential(
        cls,
        potential: Potential,
        memory_fraction: float = 0.6,
        *,
        max_atoms: int | None = None,
        max_edges: int | None = None,
    ) -> BatchBudget:
        """The budget for the potential's device (GPU: from free memory); ``max_atoms`` and
        ``max_edges`` replace the defaults, but never lift the model's ``max_atoms_per_call``."""
        if potential.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(potential.device)
            # what our caching allocator holds unused is free to us too: without it, every
            # budget after the first batch would shrink by the last batch's footprint
            dev = potential.device
            free += torch.cuda.memory_reserved(dev) - torch.cuda.memory_allocated(dev)
            per_edge = potential.gpu_bytes_per_edge * (2 if potential.dtype == torch.float64 else 1)
            edges = int(free * memory_fraction / per_edge)
            budget = cls(max_atoms=max(edges // 20, 1024), max_edges=max(edges, 50_000))
        else:
            # On a CPU a big batch gains nothing: per-atom cost is flat up to the model's
            # cpu_max_edges and rises beyond (SevenNet-0: 1.8x at 27k edges), and memory with it.
            budget = cls(max_edges=potential.cpu_max_edges)
        atoms = max_atoms or budget.max_atoms
        if potential.max_atoms_per_call is not None:  # the model's memory limit, not a choice
            atoms = min(atoms, potential.max_atoms_per_call)
        return cls(max_atoms=atoms, max_edges=max_edges or budget.max_edges)

    def fits(self, atoms: int, edges: float, new_atoms: int, new_edges: float, scales: str) -> bool:
        if atoms + new_atoms > self.max_atoms:
            return False
        return scales != "n_edges" or edges + new_edges <= self.max_edges
