"""One guarded batched evaluation: a failing or non-finite system never sinks its neighbours."""

from __future__ import annotations

import traceback
from dataclasses import dataclass

import torch

from mlipflows.engine.batch import Batch, segment_sum
from mlipflows.potentials.base import Potential, PotentialOutput


@dataclass
class OutOfMemoryMemo:
    """The smallest batch (in atoms) that ran out of device memory, within one engine call.

    A relaxation evaluates much the same batch every step: without it, a batch too big for
    the device would fail once and be bisected again at every step.
    """

    too_big_atoms: int | None = None

    def skips(self, n_atoms: int) -> bool:
        return self.too_big_atoms is not None and n_atoms >= self.too_big_atoms

    def failed(self, n_atoms: int) -> None:
        self.too_big_atoms = n_atoms if self.too_big_atoms is None else min(self.too_big_atoms, n_atoms)


def guarded_evaluate(
    potential: Potential,
    batch: Batch,
    compute_stress: bool = True,
    memo: OutOfMemoryMemo | None = None,
) -> tuple[PotentialOutput, list[str | None]]:
    """Evaluate ``batch``; return outputs (float64) and a per-system error (None = fine).

    If the whole call raises (a structure the model cannot take, or a batch too big for the
    device's memory), the batch is bisected and each half retried, down to single systems:
    only the culprits fail. One culprit among n costs ~2 log2(n) calls (n + 1 one by one); a
    batch too big for memory ends in halves that fit. NaN/inf energies, forces or stresses
    mark just that system as failed. Raises the first structure's own exception when no
    system of the batch could be evaluated (a broken model or set-up, not a bad structure).
    With a ``memo`` shared across calls, a batch at least as big as one that ran out of
    memory is split without being tried.
    """
    out, errors, exc = _bisect(potential, batch, compute_stress, memo or OutOfMemoryMemo())
    if exc is not None and all(e is not None for e in errors):
        raise exc
    return out, errors


def _bisect(
    potential: Potential, batch: Batch, compute_stress: bool, memo: OutOfMemoryMemo
) -> tuple[PotentialOutput, list[str | None], Exception | None]:
    """Outputs with NaN rows where evaluation failed, per-system errors, and the first single
    system's exception (None when no system raised)."""
    n = batch.n_systems
    if n > 1 and memo.skips(len(batch.positions)):
        return _halves(potential, batch, compute_stress, memo)
    failure: Exception | None = None
    try:
        out = potential.evaluate(batch, compute_stress=compute_stress)
    except (RuntimeError, ValueError, IndexError, KeyError) as exc:
        # the failed call's tensors live on in the traceback's frames: drop them before any
        # retry, or an out-of-memory batch's halves find the memory still taken
        traceback.clear_frames(exc.__traceback__)
        failure = exc
    if failure is not None:
        if n == 1:
            reason = f"{potential.name} failed on this structure: {type(failure).__name__}: {failure}"
            return _failed(batch, compute_stress), [reason], failure
        if isinstance(failure, torch.cuda.OutOfMemoryError):  # torch.OutOfMemoryError from 2.4 on
            memo.failed(len(batch.positions))
            torch.cuda.empty_cache()
        return _halves(potential, batch, compute_stress, memo)
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
    potential: Potential, batch: Batch, compute_stress: bool, memo: OutOfMemoryMemo
) -> tuple[PotentialOutput, list[str | None], Exception | None]:
    out = _failed(batch, compute_stress)
    errors: list[str | None] = []
    first: Exception | None = None
    stress_returned = False
    n = batch.n_systems
    for systems in (list(range(n // 2)), list(range(n // 2, n))):
        part, part_errors, exc = _bisect(potential, batch.subset(systems), compute_stress, memo)
        idx = torch.as_tensor(systems, device=batch.device)
        out.energy[idx] = part.energy
        out.forces[batch.atom_mask(systems)] = part.forces  # subsets keep the atoms' order
        if out.stress is not None and part.stress is not None:
            out.stress[idx] = part.stress
            stress_returned = True
        errors += part_errors
        first = first or exc
    if not stress_returned:  # a model that returns no stress: no NaN stand-in either
        out = PotentialOutput(energy=out.energy, forces=out.forces, stress=None)
    return out, errors, first


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
