"""The differentiable geometry every model of ours consumes, and forces/stress by autograd.

Positions and cells pass through a symmetric strain ε (zero valued) so that one backward pass
gives forces F = -∂E/∂r (eV/Å) and the stress σ = (1/V) ∂E/∂ε (eV/Å³, ASE sign), the same
route as :mod:`mlipflows.potentials.morse`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlipflows.engine.batch import Batch
from mlipflows.engine.neighbors import neighbor_list


@dataclass
class AtomicGraph:
    """A batch with its edges, all tensors differentiable in the (strained) positions and cells.

    Attributes:
        positions: (N, 3) Å.  cell: (S, 3, 3) Å, rows are lattice vectors.
        atomic_numbers, system_idx: (N,) int64.  pbc: (S, 3) bool.
        edge_index: (2, E) sender i, receiver j; ``vectors`` = r_j - r_i + shift, Å.
        lengths: (E,) |vectors|, Å.  edge_system: (E,) int64.
        total_charge: (S,) net charge per structure, e.  head: (S,) int64 readout head.
    """

    positions: torch.Tensor
    cell: torch.Tensor
    atomic_numbers: torch.Tensor
    system_idx: torch.Tensor
    pbc: torch.Tensor
    edge_index: torch.Tensor
    edge_system: torch.Tensor
    vectors: torch.Tensor
    lengths: torch.Tensor
    total_charge: torch.Tensor
    head: torch.Tensor

    @property
    def n_systems(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> int:
        return int(self.positions.shape[0])

    def as_batch(self) -> Batch:
        """The geometry as a :class:`Batch` (tensors stay attached to the autograd graph)."""
        return Batch(self.positions, self.atomic_numbers, self.system_idx, self.cell, self.pbc)


@dataclass
class StrainedInputs:
    """Leaves of the autograd graph: ``positions`` (N, 3) and ``strain`` (S, 3, 3)."""

    positions: torch.Tensor
    strain: torch.Tensor
    volume: torch.Tensor


def build_graph(
    batch: Batch,
    cutoff: float,
    total_charge: torch.Tensor | None = None,
    head: torch.Tensor | None = None,
) -> tuple[AtomicGraph, StrainedInputs]:
    """Neighbour list within ``cutoff`` (Å) and strained, differentiable geometry."""
    dtype, device = batch.positions.dtype, batch.positions.device
    graph = neighbor_list(batch, cutoff)
    pos_s, cell_s, inputs = strained(batch)
    vectors = graph.edge_vectors(pos_s, cell_s)
    if total_charge is None:
        total_charge = torch.zeros(batch.n_systems, dtype=dtype, device=device)
    if head is None:
        head = torch.zeros(batch.n_systems, dtype=torch.long, device=device)
    atomic = AtomicGraph(
        positions=pos_s,
        cell=cell_s,
        atomic_numbers=batch.atomic_numbers,
        system_idx=batch.system_idx,
        pbc=batch.pbc,
        edge_index=graph.edge_index,
        edge_system=graph.edge_system,
        vectors=vectors,
        lengths=vectors.norm(dim=1),
        total_charge=total_charge.to(device=device, dtype=dtype),
        head=head.to(device=device, dtype=torch.long),
    )
    return atomic, inputs


def strained(batch: Batch) -> tuple[torch.Tensor, torch.Tensor, StrainedInputs]:
    """Positions (N, 3) and cells (S, 3, 3) of ``batch`` under a zero symmetric strain ε.

    Energies built from them differentiate to forces and stress in
    :func:`forces_and_stress`.
    """
    dtype, device = batch.positions.dtype, batch.positions.device
    strain = torch.zeros((batch.n_systems, 3, 3), dtype=dtype, device=device, requires_grad=True)
    deform = torch.eye(3, dtype=dtype, device=device) + 0.5 * (strain + strain.transpose(1, 2))
    pos = batch.positions.detach().clone().requires_grad_(True)
    pos_s = torch.einsum("ni,nij->nj", pos, deform[batch.system_idx])
    cell_s = torch.bmm(batch.cell.detach(), deform)
    volume = torch.linalg.det(batch.cell.detach()).abs()
    return pos_s, cell_s, StrainedInputs(pos, strain, volume)


def forces_and_stress(
    energy: torch.Tensor,
    inputs: StrainedInputs,
    compute_stress: bool = True,
    create_graph: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """F = -∂E/∂r (N, 3) eV/Å and σ = (1/V) ∂E/∂ε (S, 3, 3) eV/Å³ (None unless requested).

    ``create_graph`` keeps the graph of the derivatives, which force and stress losses need.
    Non-periodic systems get a stress from their bounding cell; it has no physical meaning.
    """
    wrt = [inputs.positions, inputs.strain] if compute_stress else [inputs.positions]
    grads = torch.autograd.grad(energy.sum(), wrt, create_graph=create_graph, allow_unused=True)
    forces = -grads[0] if grads[0] is not None else torch.zeros_like(inputs.positions)
    if not compute_stress:
        return forces, None
    g = grads[1] if grads[1] is not None else torch.zeros_like(inputs.strain)
    return forces, g / inputs.volume.clamp_min(1e-12)[:, None, None]
