"""One guarded batched evaluation: a failing or non-finite system never sinks its neighbours."""

from __future__ import annotations

import torch

from mlipflows.engine.batch import Batch, segment_sum
from mlipflows.potentials.base import Potential, PotentialOutput


def guarded_evaluate(
    potential: Potential, batch: Batch, compute_stress: bool = True
) -> tuple[PotentialOutput, list[str | None]]:
    """Evaluate ``batch``; return outputs (float64) and a per-system error (None = fine).

    If the whole call raises, systems are retried one by one so that only the culprit fails.
    NaN/inf energies, forces or stresses mark just that system as failed.
    """
    n = batch.n_systems
    errors: list[str | None] = [None] * n
    try:
        out = potential.evaluate(batch, compute_stress=compute_stress)
    except (RuntimeError, ValueError, IndexError, KeyError) as exc:
        if n == 1:
            raise
        return _evaluate_one_by_one(potential, batch, compute_stress, errors, exc)
    out = _to_float64(out, batch.device)
    bad = ~torch.isfinite(out.energy)
    bad |= segment_sum((~torch.isfinite(out.forces)).any(-1).double(), batch.system_idx, n) > 0
    if out.stress is not None:
        bad |= ~torch.isfinite(out.stress).all(-1).all(-1)
    for s in torch.nonzero(bad).flatten().tolist():
        errors[s] = f"non-finite energy, forces or stress from {potential.name}"
    return out, errors


def _to_float64(out: PotentialOutput, device: torch.device) -> PotentialOutput:
    return PotentialOutput(
        energy=out.energy.to(device, torch.float64),
        forces=out.forces.to(device, torch.float64),
        stress=None if out.stress is None else out.stress.to(device, torch.float64),
    )


def _evaluate_one_by_one(
    potential: Potential,
    batch: Batch,
    compute_stress: bool,
    errors: list[str | None],
    batch_exc: Exception,
) -> tuple[PotentialOutput, list[str | None]]:
    n = batch.n_systems
    dtype, device = torch.float64, batch.device
    energy = torch.full((n,), float("nan"), dtype=dtype, device=device)
    forces = torch.full((len(batch.positions), 3), float("nan"), dtype=dtype, device=device)
    stress = torch.full((n, 3, 3), float("nan"), dtype=dtype, device=device) if compute_stress else None
    for s in range(n):
        sub = batch.subset([s])
        try:
            out, sub_err = guarded_evaluate(potential, sub, compute_stress)
        except (RuntimeError, ValueError, IndexError, KeyError) as exc:
            errors[s] = f"{potential.name} failed on this structure: {type(exc).__name__}: {exc}"
            continue
        errors[s] = sub_err[0]
        energy[s] = out.energy[0]
        forces[batch.system_idx == s] = out.forces
        if stress is not None and out.stress is not None:
            stress[s] = out.stress[0]
    if all(e is not None for e in errors):
        raise batch_exc
    return PotentialOutput(energy=energy, forces=forces, stress=stress), errors
