"""Data-derived constants of a model, fitted before gradient descent.

* E0 (per head, per element) by linear least squares of the reference energies on the element
  counts, E_s ≈ Σ_Z n_sZ E0_Z (shift 0). Optionally (``fit_shift``) jointly with a per-neighbour
  shift on Σ_i c_i / c̄ (c_i the smooth coordination). That joint fit is off by default: on
  mlearn Si it returned E0 = -7.9 eV and +2.8 eV per neighbour, a strongly repulsive
  coordination baseline that made an unstressed model expand diamond Si to a = 8 Å. Fixed E0
  values (e.g. isolated-atom DFT energies) can be given instead.
* scale (per head) = RMS of the reference force components, so the network learns O(1) numbers.
* c̄ = mean smooth coordination of the training structures (message normalisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pymatgen.core import Element

from mlipflows.engine.batch import Batch
from mlipflows.engine.neighbors import neighbor_list
from mlipflows.models.base import EnergyModel
from mlipflows.models.readout import smooth_coordination
from mlipflows.training.data import Sample


def coordinations(samples: Sequence[Sample], cutoff: float) -> list[float]:
    """Σ_i c_i of every sample (smooth coordination summed over atoms)."""
    out = []
    for s in samples:
        batch = Batch.from_atoms([s.atoms], dtype=torch.float64)
        g = neighbor_list(batch, cutoff)
        r = g.edge_vectors(batch.positions, batch.cell).norm(dim=1)
        out.append(float(smooth_coordination(r, g.edge_index, len(s.atoms), cutoff).sum()))
    return out


def mean_coordination(samples: Sequence[Sample], cutoff: float) -> float:
    """c̄ over all atoms of ``samples`` (at least 1, so a set of dimers still normalises)."""
    total = sum(coordinations(samples, cutoff))
    return max(total / max(sum(s.n_atoms for s in samples), 1), 1.0)


def fit_baseline(
    model: EnergyModel,
    samples: Sequence[Sample],
    fixed_e0: dict[str, dict[str, float]] | None = None,
    fit_shift: bool = False,
) -> dict[str, dict[str, float]]:
    """Set ``model.readout`` E0, shift and scale from ``samples``; returns the E0 table (eV)."""
    readout = model.readout
    c_bar = float(readout.mean_coordination)
    coord = np.array(coordinations(samples, model.cutoff)) / c_bar
    table: dict[str, dict[str, float]] = {}
    for h, head in enumerate(readout.heads):
        idx = [k for k, s in enumerate(samples) if s.head == head]
        if not idx:
            continue
        elements = sorted({z for k in idx for z in samples[k].atoms.numbers})
        counts = np.array([[np.sum(samples[k].atoms.numbers == z) for z in elements] for k in idx], float)
        energy = np.array([samples[k].energy for k in idx])
        given = (fixed_e0 or {}).get(head)
        shift = 0.0
        if given:
            e0 = np.array([given[Element.from_Z(int(z)).symbol] for z in elements])
            if fit_shift:
                rest = energy - counts @ e0
                shift = float(np.linalg.lstsq(coord[idx, None], rest, rcond=None)[0][0])
        elif fit_shift:
            design = np.concatenate([counts, coord[idx, None]], axis=1)
            sol = np.linalg.lstsq(design, energy, rcond=None)[0]
            e0, shift = sol[:-1], float(sol[-1])
        else:
            e0 = np.linalg.lstsq(counts, energy, rcond=None)[0]
        forces = [samples[k].forces for k in idx if samples[k].forces is not None]
        rms = float(np.sqrt(np.mean(np.concatenate(forces) ** 2))) if forces else 1.0
        with torch.no_grad():
            for z, value in zip(elements, e0, strict=True):
                readout.e0[h, int(z)] = float(value)
            readout.shift[h] = shift
            readout.scale[h] = max(rms, 1e-2)
        table[head] = {Element.from_Z(int(z)).symbol: float(v) for z, v in zip(elements, e0, strict=True)}
    return table
