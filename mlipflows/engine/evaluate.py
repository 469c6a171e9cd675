"""One guarded batched evaluation: a failing or non-finite system never sinks its neighbours."""

from __future__ import annotations

import torch

from mlipflows.engine.batch import Batch, segment_sum
from mlipflows.potentials.base import Potential, PotentialOutput


def guarded_evaluate(
    potential: Potential, batch: Batch, compute_stress: bool = True
) -> tuple[PotentialOutput, list[str | None]]:
    """Evaluate ``batch``; return outputs (float64) and a per-system error (None = fine).

    If the whole call raises (a structure the model cannot take, or a batch too big for the
    device's memory), the batch is bisected and each half retried, down to single systems:
    only the culprits fail, and a poisoned batch of n costs ~2 log2(n) calls, not n. NaN/inf
    energies, forces or stresses mark just that system as failed. Raises when no system of the
    batch could be evaluated (a broken model or set-up, not a bad structure).
    """
    out, errors, exc = _bisect(potential, batch, compute_stress)
    if exc is not None and all(e is not None for e in errors):
        raise exc
    return out, errors


def _bisect(
    potential: Potential, batch: Batch, compute_stress: bool
) -> tuple[PotentialOutput, list[str | None], Exception | None]:
    """Outputs with NaN rows where evaluation failed, per-system errors, the batch's exception."""
    n = batch.n_systems
    try:
        out = potential.evaluate(batch, compute_stress=compute_stress)
    except (RuntimeError, ValueError, IndexError, KeyError) as exc:
        if n == 1:
            reason = f"{potential.name} failed on this structure: {type(exc).__name__}: {exc}"
            return _failed(batch, compute_stress), [reason], exc
        if isinstance(exc, torch.cuda.OutOfMemoryError):  # torch.OutOfMemoryError from 2.5 on
            torch.cuda.empty_cache()  # the failed call's blocks, before the halves ask again
        return (*_halves(potential, batch, compute_stress), exc)
    out = _to_float64(out, batch.device)
    bad = ~torch.isfinite(out.energy)
    bad |= segment_sum((~torch.isfinite(out.forces)).any(-1).double(), batch.system_idx, n) > 0
    if out.stress is not None:
        bad |= ~torch.isfinite(out.stress).all(-1).all(-1)
    errors: list[str | None] = [None] * n
    for s in torch.nonzero(bad).flatten().tolist():
        errors[s] = f"non-finite energy, forces or stress from {potential.name}"
    return out, errors, None


def _halves(
    potential: Potential, batch: Batch, compute_stress: bool
) -> tuple[PotentialOutput, list[str | None]]:
    out = _failed(batch, compute_stress)
    errors: list[str | None] = []
    n = batch.n_systems
    for systems in (list(range(n // 2)), list(range(n // 2, n))):
        part, part_errors, _ = _bisect(potential, batch.subset(systems), compute_stress)
        idx = torch.as_tensor(systems, device=batch.device)
        out.energy[idx] = part.energy
        out.forces[batch.atom_mask(systems)] = part.forces  # halves are contiguous, in order
        if out.stress is not None and part.stress is not None:
            out.stress[idx] = part.stress
        errors += part_errors
    return out, errors


def _failed(batch: Batch, compute_stress: bool) -> PotentialOutput:
    """All-NaN float64 outputs shaped like ``batch``'s."""
    n, nan = batch.n_systems, float("nan")
    f = {"dtype": torch.float64, "device": batch.device}
    return PotentialOutput(
        energy=torch.full((n,), nan, **f),
        forces=torch.full((len(batch.positions), 3), nan, **f),
        stress=torch.full((n, 3, 3), nan, **f) if compute_stress else None,
    )


def _to_float64(out: PotentialOutput, device: torch.device) -> PotentialOutput:
    return PotentialOutput(
        energy=out.energy.to(device, torch.float64),
        forces=out.forces.to(device, torch.float64),
        stress=None if out.stress is None else out.stress.to(device, torch.float64),
    )
