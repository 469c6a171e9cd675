"""Potentials with controlled behaviour, loadable as import paths ``tests.helpers:NAME``."""

from __future__ import annotations

import torch

from mlipflows.engine.batch import Batch
from mlipflows.potentials.base import Potential, PotentialOutput
from mlipflows.potentials.morse import MorsePotential


def morse_no_xe(device: str = "cpu", dtype: torch.dtype = torch.float64) -> Potential:
    """Morse covering every element but Xe."""
    from pymatgen.core import Element

    elements = frozenset(Element.from_Z(z).symbol for z in range(1, 95)) - {"Xe"}
    pot = MorsePotential(device=device, dtype=torch.float64, elements=elements)
    pot.card.name = "morse-no-xe"
    return pot


class NaNForKr(MorsePotential):
    """Morse, except that any system containing Kr gets NaN energies and forces."""

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        out = super().evaluate(batch, compute_stress)
        has_kr = torch.zeros(batch.n_systems, dtype=torch.bool)
        has_kr[batch.system_idx[batch.atomic_numbers == 36]] = True
        out.energy[has_kr] = float("nan")
        out.forces[has_kr[batch.system_idx]] = float("nan")
        return out


def nan_for_kr(device: str = "cpu", dtype: torch.dtype = torch.float64) -> Potential:
    pot = NaNForKr(device=device, dtype=torch.float64)
    pot.card.name = "nan-for-kr"
    pot.card.checksum = "analytic:nan-for-kr"  # another model: never share cached references
    return pot


class RaisesForAr(MorsePotential):
    """Morse that raises (like a model hitting an internal error) on any batch containing Ar."""

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        if bool((batch.atomic_numbers == 18).any()):
            raise RuntimeError("simulated model failure on Ar")
        return super().evaluate(batch, compute_stress)


def raises_for_ar(device: str = "cpu", dtype: torch.dtype = torch.float64) -> Potential:
    pot = RaisesForAr(device=device, dtype=torch.float64)
    pot.card.name = "raises-for-ar"
    pot.card.checksum = "analytic:raises-for-ar"
    return pot


def not_a_potential(device: str = "cpu", dtype: torch.dtype = torch.float64) -> object:
    return object()


class NaNAboveVolume(MorsePotential):
    """Morse, except NaN energies and forces for cells larger than ``max_volume`` (Å³).

    Stands in for a model that fails on some strained cells of an elastic calculation.
    """

    max_volume = float("inf")

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.card.checksum = f"analytic:nan-above-{self.max_volume}"

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        out = super().evaluate(batch, compute_stress)
        bad = torch.linalg.det(batch.cell).abs().cpu() > self.max_volume
        out.energy[bad] = float("nan")
        out.forces[bad[batch.system_idx.cpu()]] = float("nan")
        return out


class SqueezesXe(MorsePotential):
    """Morse plus an enthalpy p·V (p = 50 eV/Å³ ≈ 8 TPa) on systems containing Xe.

    Stands in for a model without short-range repulsion for some chemistry: the Xe cell
    shrinks without bound under the cell filter.
    """

    pressure = 50.0

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.card.checksum = f"analytic:squeezes-xe-{self.pressure}"

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        out = super().evaluate(batch, compute_stress)
        has_xe = torch.zeros(batch.n_systems, dtype=torch.bool)
        has_xe[batch.system_idx[batch.atomic_numbers == 54]] = True
        volume = torch.linalg.det(batch.cell).abs()
        out.energy = out.energy + torch.where(has_xe, self.pressure * volume, 0.0)
        if out.stress is not None:
            eye = torch.eye(3, dtype=out.stress.dtype)
            out.stress = out.stress + self.pressure * has_xe[:, None, None] * eye
        return out


class HoleyMorse(MorsePotential):
    """Morse whose pair energy turns into a hole, −50/r eV, below 0.3 × the covalent-radius sum.

    Stands in for a universal MLIP that was never trained on close contacts (SevenNet-0 gives
    two Cs atoms 0.6 Å apart −5 × 10⁵ eV): repulsive down to a short distance, then falling
    without bound. An input or random candidate with a close pair relaxes into the hole and
    looks extremely stable. Between 0.3 and 0.45 × the sum the two blend (C² smoothstep).
    """

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        from mlipflows.engine.batch import segment_sum
        from mlipflows.engine.neighbors import neighbor_list
        from mlipflows.models.geometry import forces_and_stress, strained
        from mlipflows.potentials.repulsion import smoothstep

        b = batch.to(dtype=torch.float64)
        graph = neighbor_list(b, self.card.cutoff)
        with torch.enable_grad():
            positions, cell, inputs = strained(b)
            r = graph.edge_vectors(positions, cell).norm(dim=1)
            i, j = graph.edge_index
            r0 = self.radii[b.atomic_numbers[i]] + self.radii[b.atomic_numbers[j]]
            ex = torch.exp(-self.alpha * (r - r0))
            morse = self.depth * (ex * ex - 2.0 * ex) * self._switch(r)
            t = smoothstep(r / r0, 0.3, 0.45)
            pair = t * morse - (1 - t) * 50.0 / r
            energy = 0.5 * segment_sum(pair, graph.edge_system, b.n_systems)
            forces, stress = forces_and_stress(energy, inputs, compute_stress=compute_stress)
        return PotentialOutput(energy=energy.detach(), forces=forces, stress=stress)


def holey_morse(device: str = "cpu", dtype: torch.dtype = torch.float64) -> Potential:
    pot = HoleyMorse(device=device, dtype=torch.float64)
    pot.card.name = "holey-morse"
    pot.card.checksum = "analytic:holey-morse:hole<0.3Rcov:-50/r"
    return pot


def deep_morse(device: str = "cpu", dtype: torch.dtype = torch.float64) -> Potential:
    """Morse with twice the well depth: every energy difference doubles (a disagreeing model)."""
    pot = MorsePotential(depth=0.6, device=device, dtype=torch.float64)
    pot.card.name = "deep-morse"
    return pot
