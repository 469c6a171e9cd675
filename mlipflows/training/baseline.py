"""Data-derived constants of a model, fitted before gradient descent.

* E0 (per head, per element) by linear least squares of the reference energies on the element
  counts, E_s ≈ Σ_Z n_sZ E0_Z (shift 0). Optionally (``fit_shift``) jointly with a per-neighbour
  shift on Σ_i c_i / c̄ (c_i the smooth coordination). That joint fit is off by default: on
  mlearn Si it returned E0 = -7.9 eV and +2.8 eV per neighbour, a strongly repulsive
  coordination baseline that made an unstressed model expand diamond Si to a = 8 Å. Fixed E0
  values (e.g. isolated-atom DFT energies) can be given instead; with them, ``fit_shift =
  "element"`` fits one per-neighbour shift per element (ridge least squares of the energy above
  the isolated atoms on Σ_{i of element Z} c_i / c̄): the bulk of each element's cohesive
  energy, so the network need not build it from its neighbours. Measured on the SevenNet-0
  base student (89 elements), it neither helped nor hurt the first ten epochs.
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


def atom_coordinations(samples: Sequence[Sample], cutoff: float) -> list[np.ndarray]:
    """c_i of every atom of every sample (smooth coordination)."""
    out = []
    for s in samples:
        batch = Batch.from_atoms([s.atoms], dtype=torch.float64)
        g = neighbor_list(batch, cutoff)
        r = g.edge_vectors(batch.positions, batch.cell).norm(dim=1)
        out.append(smooth_coordination(r, g.edge_index, len(s.atoms), cutoff).numpy())
    return out


def coordinations(samples: Sequence[Sample], cutoff: float) -> list[float]:
    """Σ_i c_i of every sample (smooth coordination summed over atoms)."""
    return [float(c.sum()) for c in atom_coordinations(samples, cutoff)]


def mean_coordination(samples: Sequence[Sample], cutoff: float) -> float:
    """c̄ over all atoms of ``samples`` (at least 1, so a set of dimers still normalises)."""
    total = sum(coordinations(samples, cutoff))
    return max(total / max(sum(s.n_atoms for s in samples), 1), 1.0)


def fit_baseline(
    model: EnergyModel,
    samples: Sequence[Sample],
    fixed_e0: dict[str, dict[str, float]] | None = None,
    fit_shift: bool | str = False,
) -> dict[str, dict[str, float]]:
    """Set ``model.readout`` E0, shift and scale from ``samples``; returns the E0 table (eV)."""
    readout = model.readout
    c_bar = float(readout.mean_coordination)
    per_atom = atom_coordinations(samples, model.cutoff)
    coord = np.array([c.sum() for c in per_atom]) / c_bar
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
        shift_z = np.zeros(len(elements))
        if given:
            e0 = np.array([given[Element.from_Z(int(z)).symbol] for z in elements])
            if fit_shift == "element":
                shift_z = _element_shifts(samples, idx, per_atom, elements, energy - counts @ e0) * c_bar
            elif fit_shift:
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
            readout.shift_z[h].zero_()
            for z, value in zip(elements, shift_z, strict=True):
                readout.shift_z[h, int(z)] = float(value)
            readout.shift[h] = shift
            readout.scale[h] = max(rms, 1e-2)
        table[head] = {Element.from_Z(int(z)).symbol: float(v) for z, v in zip(elements, e0, strict=True)}
    return table


def _element_shifts(
    samples: Sequence[Sample],
    idx: list[int],
    per_atom: list[np.ndarray],
    elements: list[int],
    rest: np.ndarray,
) -> np.ndarray:
    """Per element, the energy per unit of coordination fitting ``rest`` (the caller multiplies
    by c̄): ridge least squares, so an element seen in few structures keeps a shift near zero."""
    design = np.zeros((len(idx), len(elements)))
    column = {z: k for k, z in enumerate(elements)}
    for row, k in enumerate(idx):
        for z, c in zip(samples[k].atoms.numbers, per_atom[k], strict=True):
            design[row, column[int(z)]] += c
    ridge = 1e-6 * max(float(np.mean(np.sum(design**2, axis=0))), 1e-12)
    return np.linalg.solve(design.T @ design + ridge * np.eye(len(elements)), design.T @ rest)
