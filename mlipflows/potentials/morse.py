"""An analytic Morse pair potential on the batched graph.

Not a materials model: a cheap, exactly differentiable potential for engine tests, finite
difference checks and very large smoke campaigns. Forces and stress come from autograd, the
same route our learned models use.

E = ½ Σ_{i≠j} D [e^{-2a(r_ij - r0)} - 2 e^{-a(r_ij - r0)}] · s(r_ij), with r0 the sum of the two
elements' covalent radii and s a C² cosine switch from 0.8 r_c to r_c.
"""

from __future__ import annotations

import math

import torch
from pymatgen.core import Element

from mlipflows.engine.batch import Batch, segment_sum
from mlipflows.engine.neighbors import neighbor_list
from mlipflows.potentials.base import ModelCard, Potential, PotentialOutput


def _covalent_radii(max_z: int = 94) -> torch.Tensor:
    from ase.data import covalent_radii

    return torch.as_tensor(covalent_radii[: max_z + 1], dtype=torch.float64)


class MorsePotential(Potential):
    """Morse pairs with r0 = covalent radius sum (Å), well depth ``depth`` (eV), ``alpha`` (1/Å).

    ``elements`` restricts the covered elements (default Z = 1..94), e.g. to test coverage checks.
    """

    memory_scales_with = "n_edges"

    def __init__(
        self,
        depth: float = 0.3,
        alpha: float = 1.6,
        cutoff: float = 6.0,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
        elements: frozenset[str] | None = None,
    ) -> None:
        self.depth, self.alpha = depth, alpha
        self.device, self.dtype = torch.device(device), dtype
        self.radii = _covalent_radii().to(device=device, dtype=dtype)
        self.card = ModelCard(
            name="morse",
            version="1",
            checksum=f"analytic:D={depth},a={alpha},rc={cutoff}",
            source="mlipflows.potentials.morse",
            cutoff=cutoff,
            elements=elements or frozenset(Element.from_Z(z).symbol for z in range(1, 95)),
        )

    def _switch(self, r: torch.Tensor) -> torch.Tensor:
        rc = self.card.cutoff
        r_on = 0.8 * rc
        x = ((r - r_on) / (rc - r_on)).clamp(0.0, 1.0)
        # (1 + cos πx)/2 has zero slope at both ends; squared it is C² (curvature vanishes too)
        return (0.5 * (1.0 + torch.cos(math.pi * x))) ** 2

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        b = batch.to(self.device, self.dtype)
        graph = neighbor_list(b, self.card.cutoff)
        strain = torch.zeros((b.n_systems, 3, 3), dtype=self.dtype, device=self.device, requires_grad=True)
        sym = 0.5 * (strain + strain.transpose(1, 2))
        eye = torch.eye(3, dtype=self.dtype, device=self.device)
        pos = b.positions.detach().requires_grad_(True)
        deform = eye + sym
        pos_s = torch.einsum("ni,nij->nj", pos, deform[b.system_idx])
        cell_s = torch.bmm(b.cell, deform)
        vec = graph.edge_vectors(pos_s, cell_s)
        r = vec.norm(dim=1)
        i, j = graph.edge_index
        r0 = self.radii[b.atomic_numbers[i]] + self.radii[b.atomic_numbers[j]]
        ex = torch.exp(-self.alpha * (r - r0))
        pair = self.depth * (ex * ex - 2.0 * ex) * self._switch(r)
        energy = 0.5 * segment_sum(pair, graph.edge_system, b.n_systems)
        grads = torch.autograd.grad(energy.sum(), [pos, strain])
        forces = -grads[0]
        stress = grads[1] / torch.linalg.det(b.cell).abs()[:, None, None] if compute_stress else None
        return PotentialOutput(
            energy=energy.detach(),
            forces=forces.detach(),
            stress=None if stress is None else stress.detach(),
        )
