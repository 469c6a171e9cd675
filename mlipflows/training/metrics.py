"""Errors of a model on labelled samples: energy MAE/RMSE (meV/atom), force MAE/RMSE (eV/Å,
per Cartesian component, as in Zuo et al. 2020), stress MAE (GPa), per group and overall."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from mlipflows.models.base import EnergyModel
from mlipflows.models.potential import predict
from mlipflows.potentials.base import EV_PER_A3_TO_GPA
from mlipflows.training.data import Sample, collate


def residuals(
    model: EnergyModel, samples: Sequence[Sample], batch_size: int = 8, dtype: torch.dtype = torch.float32
) -> Iterator[tuple[Sample, float, np.ndarray, np.ndarray | None]]:
    """Per sample: energy error per atom (eV), |force errors| (n, 3) eV/Å (empty when
    unlabelled), |stress errors| (3, 3) GPa or None."""
    heads = model.readout.heads
    device = next(model.parameters()).device
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batch, t = collate(chunk, heads, dtype=dtype, device=device)
        p = predict(model, batch, compute_stress=True, total_charge=t.charge, head=t.head)
        de = ((p.energy.detach() - t.energy) / t.n_atoms).cpu().numpy()
        df = torch.split((p.forces.detach() - t.forces).abs().cpu(), [s.n_atoms for s in chunk])
        for k, s in enumerate(chunk):
            ds = None
            if s.stress is not None:
                ds = np.abs(p.stress[k].detach().cpu().numpy() - s.stress) * EV_PER_A3_TO_GPA
            yield s, float(de[k]), df[k].numpy() if s.forces is not None else np.zeros((0, 3)), ds


def errors(
    model: EnergyModel,
    samples: Sequence[Sample],
    batch_size: int = 8,
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, float]]:
    """``{"all": {...}, "<tag>": {...}}`` with energy_mae_mev_atom, energy_rmse_mev_atom,
    force_mae_ev_a, force_rmse_ev_a, stress_mae_gpa (when labelled) and n."""
    rows = [(s.tag, de, df, ds) for s, de, df, ds in residuals(model, samples, batch_size, dtype)]
    out = {}
    for tag in ["all", *sorted({r[0] for r in rows if r[0]})]:
        sel = [r for r in rows if tag == "all" or r[0] == tag]
        de = np.array([r[1] for r in sel])
        df = np.concatenate([r[2].ravel() for r in sel])
        stress = [r[3] for r in sel if r[3] is not None]
        out[tag] = {
            "n": len(sel),
            "energy_mae_mev_atom": float(np.mean(np.abs(de)) * 1000),
            "energy_rmse_mev_atom": float(np.sqrt(np.mean(de**2)) * 1000),
            "force_mae_ev_a": float(np.mean(df)) if df.size else float("nan"),
            "force_rmse_ev_a": float(np.sqrt(np.mean(df**2))) if df.size else float("nan"),
            "stress_mae_gpa": float(np.mean(np.concatenate([s.ravel() for s in stress])))
            if stress
            else float("nan"),
        }
    return out


def per_element_errors(
    model: EnergyModel,
    samples: Sequence[Sample],
    batch_size: int = 8,
    min_structures: int = 10,
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, float | int | bool]]:
    """Errors per element: a structure's energy (per atom) and stress errors count for every
    element it contains; a force error counts for its own atom's element. ``few`` marks
    elements seen in fewer than ``min_structures`` structures (their numbers are anecdotes)."""
    energy: dict[str, list[float]] = {}
    force: dict[str, list[np.ndarray]] = {}
    stress: dict[str, list[np.ndarray]] = {}
    for s, de, df, ds in residuals(model, samples, batch_size, dtype):
        symbols = np.array(s.atoms.get_chemical_symbols())
        for el in map(str, set(symbols)):
            energy.setdefault(el, []).append(abs(de))
            if ds is not None:
                stress.setdefault(el, []).append(ds.ravel())
            if s.forces is not None:
                force.setdefault(el, []).append(df[symbols == el].ravel())
    out: dict[str, dict[str, float | int | bool]] = {}
    for el in sorted(energy):
        f = np.concatenate(force[el]) if el in force else np.zeros(0)
        out[el] = {
            "n": len(energy[el]),
            "energy_mae_mev_atom": float(np.mean(energy[el]) * 1000),
            "force_mae_ev_a": float(np.mean(f)) if f.size else float("nan"),
            "stress_mae_gpa": float(np.mean(np.concatenate(stress[el]))) if el in stress else float("nan"),
            "few": len(energy[el]) < min_structures,
        }
    return out
