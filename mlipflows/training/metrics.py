"""Errors of a model on labelled samples: energy MAE/RMSE (meV/atom), force MAE/RMSE (eV/Å,
per Cartesian component, as in Zuo et al. 2020), stress MAE (GPa), per group and overall."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mlipflows.models.base import EnergyModel
from mlipflows.models.potential import predict
from mlipflows.potentials.base import EV_PER_A3_TO_GPA
from mlipflows.training.data import Sample, collate


def errors(
    model: EnergyModel,
    samples: Sequence[Sample],
    batch_size: int = 8,
    dtype: torch.dtype = torch.float32,
) -> dict[str, dict[str, float]]:
    """``{"all": {...}, "<tag>": {...}}`` with energy_mae_mev_atom, energy_rmse_mev_atom,
    force_mae_ev_a, force_rmse_ev_a, stress_mae_gpa (when labelled) and n."""
    heads = model.readout.heads
    rows: list[tuple[str, float, np.ndarray, np.ndarray | None]] = []
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batch, t = collate(chunk, heads, dtype=dtype)
        p = predict(model, batch, compute_stress=True, total_charge=t.charge, head=t.head)
        de = ((p.energy.detach() - t.energy) / t.n_atoms).numpy()
        df = torch.split((p.forces.detach() - t.forces).abs(), [s.n_atoms for s in chunk])
        for k, s in enumerate(chunk):
            ds = None
            if s.stress is not None:
                ds = np.abs(p.stress[k].detach().numpy() - s.stress) * EV_PER_A3_TO_GPA
            rows.append(
                (s.tag, float(de[k]), df[k].numpy() if s.forces is not None else np.zeros((0, 3)), ds)
            )
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
