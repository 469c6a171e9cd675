"""Any potential plus Grimme D3 dispersion: the ``MODEL+d3`` load specs.

Universal MLIPs trained on PBE (SevenNet-0, CHGNet, ours on mlearn) miss van der Waals
binding; adding D3(BJ) on top is the common fix (e.g. SevenNet's and MACE's "+D3" variants).
The wrapper evaluates the model as usual and adds the D3 energy, forces and stress from
:class:`~mlipflows.models.dispersion.D3Dispersion` in float64.
"""

from __future__ import annotations

import hashlib

import torch

from mlipflows.engine.batch import Batch
from mlipflows.models.dispersion import D3Dispersion
from mlipflows.models.geometry import forces_and_stress, strained
from mlipflows.potentials import D3_SUFFIX
from mlipflows.potentials.base import ModelCard, Potential, PotentialOutput

# atoms per D3 call: ~2,000 pairs per atom within 21 Å in a dense solid, so ~0.5 M pairs
D3_CHUNK_ATOMS = 256


def split_dispersion(spec: str) -> tuple[str, str]:
    """``"sevennet-0+d3"`` → ``("sevennet-0", "pbe")``; ``"m.pt+d3:pbesol"`` → (m.pt, pbesol).

    Raises:
        ValueError: the suffix is not at the end (``"+d3"`` or ``"+d3:XC"``).
    """
    base, sep, tail = spec.rpartition(D3_SUFFIX)
    if not sep or not base or (tail and not tail.startswith(":")):
        raise ValueError(f"{spec!r}: write MODEL+d3 or MODEL+d3:XC (e.g. sevennet-0+d3:pbesol)")
    return base, tail[1:] or "pbe"


class DispersionCorrected(Potential):
    """``base`` + D3(BJ) with the damping parameters of functional ``xc``."""

    def __init__(self, base: Potential, xc: str = "pbe") -> None:
        try:
            self.d3 = D3Dispersion(xc=xc)
        except ValueError as err:
            raise ValueError(f"no D3(BJ) parameters for functional {xc!r} in torch-dftd") from err
        self.base = base
        self.device, self.dtype = base.device, base.dtype
        self.adopt_batching(base)
        card = base.card
        self.card = ModelCard(
            name=f"{card.name}{D3_SUFFIX}" + ("" if xc == "pbe" else f":{xc}"),
            version=f"{card.version}+d3bj-{xc}",
            # results are keyed by checksum: with D3 they must not replace the plain model's
            checksum=hashlib.sha256(f"{card.checksum}+d3bj-{xc}".encode()).hexdigest(),
            source=f"{card.source} + D3(BJ, {xc}) from torch-dftd",
            cutoff=card.cutoff,
            elements=card.elements,
        )

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        batch = batch.to(self.device)  # D3 is added to the base model's output, on its device
        out = self.base.evaluate(batch, compute_stress=compute_stress)
        energy, forces, stress = self._dispersion(batch.to(dtype=torch.float64), compute_stress)
        return PotentialOutput(
            energy=out.energy + energy.to(out.energy.dtype),
            forces=out.forces + forces.to(out.forces.dtype),
            stress=None if out.stress is None else out.stress + stress.to(out.stress.dtype),
        )

    def _dispersion(
        self, batch: Batch, compute_stress: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """D3 energy (S,), forces (N, 3), stress (S, 3, 3), a few systems at a time.

        The D3 cutoff (21 Å) gives ~70× the pairs of a 5 Å model, so the model's batch would
        not fit in memory as one D3 call.
        """
        energy = torch.zeros(batch.n_systems, dtype=torch.float64, device=batch.device)
        forces = torch.zeros_like(batch.positions)
        stress = torch.zeros_like(batch.cell)
        for first, stop in _system_groups(batch.n_atoms.tolist(), D3_CHUNK_ATOMS):
            systems = range(first, stop)
            part = batch.subset(systems)
            with torch.enable_grad():
                positions, cell, inputs = strained(part)
                e = self.d3.energy(Batch(positions, part.atomic_numbers, part.system_idx, cell, part.pbc))
                f, s = forces_and_stress(e, inputs, compute_stress=compute_stress)
            energy[first:stop] = e.detach()
            forces[batch.atom_mask(systems)] = f
            if s is not None:
                stress[first:stop] = s
        return energy, forces, stress


def _system_groups(counts: list[int], max_atoms: int) -> list[tuple[int, int]]:
    """Consecutive ranges [first, stop) of systems with at most ``max_atoms`` atoms (or one)."""
    groups, first, atoms = [], 0, 0
    for k, n in enumerate(counts):
        if atoms and atoms + n > max_atoms:
            groups.append((first, k))
            first, atoms = k, 0
        atoms += n
    if counts:
        groups.append((first, len(counts)))
    return groups
