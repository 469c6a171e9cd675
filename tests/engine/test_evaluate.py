"""A batch whose model call raises is bisected: only the culprits fail, in few calls."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure

from mlipflows.engine import Batch, BatchBudget, RelaxSettings, relax
from mlipflows.engine.evaluate import OutOfMemoryMemo, guarded_evaluate
from mlipflows.potentials.morse import MorsePotential

CALLS: list[int] = []


class FussyMorse(MorsePotential):
    """Morse that runs "out of memory" above 4 systems and cannot take argon."""

    def evaluate(self, batch, compute_stress=True):
        CALLS.append(batch.n_systems)
        if batch.n_systems > 4:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        if (batch.atomic_numbers == 18).any():
            raise RuntimeError("simulated model failure on Ar")
        return super().evaluate(batch, compute_stress)


def _cells(n: int, argon_at: int | None = None) -> list[Structure]:
    """n cells of 4, 8 or 12 atoms, so the halves of a batch differ in size."""
    return [
        Structure(Lattice.cubic(3.5 + 0.02 * i), ["Ar" if i == argon_at else "Cu"], [[0, 0, 0]])
        * (2, 2, 1 + i % 3)
        for i in range(n)
    ]


def _agrees_with_single_calls(pot, cells, out, compute_stress=True) -> None:
    start = 0
    for i, s in enumerate(cells):
        alone, _ = guarded_evaluate(pot, Batch.from_structures([s]), compute_stress)
        assert float(out.energy[i]) == pytest.approx(float(alone.energy[0]), abs=1e-12)
        torch.testing.assert_close(out.forces[start : start + len(s)], alone.forces)
        if compute_stress:
            torch.testing.assert_close(out.stress[i], alone.stress[0])
        start += len(s)


def test_too_big_a_batch_is_halved_until_it_fits_and_agrees_with_single_calls():
    pot, cells = FussyMorse(dtype=torch.float64), _cells(11)
    CALLS.clear()
    out, errors = guarded_evaluate(pot, Batch.from_structures(cells))
    assert errors == [None] * 11
    # one-by-one retries would have taken 12 calls; the 6-system half has more atoms than the
    # 5-system half that ran out of memory, so it is split without being tried
    assert CALLS == [11, 5, 2, 3, 3, 3]
    _agrees_with_single_calls(pot, cells, out)

    out, errors = guarded_evaluate(pot, Batch.from_structures(cells), compute_stress=False)
    assert out.stress is None and errors == [None] * 11
    _agrees_with_single_calls(pot, cells, out, compute_stress=False)


def test_a_structure_the_model_cannot_take_fails_alone_in_log_n_calls():
    pot, cells = FussyMorse(dtype=torch.float64), _cells(4, argon_at=2)
    CALLS.clear()
    out, errors = guarded_evaluate(pot, Batch.from_structures(cells))
    assert CALLS == [4, 2, 2, 1, 1]
    assert errors[2] == "morse failed on this structure: RuntimeError: simulated model failure on Ar"
    assert [e is None for e in errors] == [True, True, False, True]
    assert torch.isnan(out.energy[2]) and torch.isfinite(out.energy[[0, 1, 3]]).all()
    argon = slice(4 + 8, 4 + 8 + 12)  # cells of 4, 8, 12 (argon) and 4 atoms
    assert torch.isnan(out.forces[argon]).all()
    assert torch.isfinite(out.forces[: argon.start]).all() and torch.isfinite(out.forces[argon.stop :]).all()


def test_a_batch_nothing_of_which_evaluates_raises_the_structures_own_error():
    """Even when the whole batch first ran out of memory, the error raised is what each
    structure failed on, not the out-of-memory that started the bisection."""
    pot = FussyMorse(dtype=torch.float64)
    argon = [Structure(Lattice.cubic(5.3), ["Ar"], [[0, 0, 0]])] * 6
    with pytest.raises(RuntimeError, match="simulated model failure on Ar"):
        guarded_evaluate(pot, Batch.from_structures(argon))


class SmallDeviceMorse(MorsePotential):
    """Morse on a "device" that holds 40 atoms: any bigger call runs out of memory."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls: list[tuple[int, bool]] = []  # (atoms, ran out of memory)

    def evaluate(self, batch, compute_stress=True):
        n_atoms = len(batch.positions)
        self.calls.append((n_atoms, n_atoms > 40))
        if n_atoms > 40:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 80.00 GiB")
        return super().evaluate(batch, compute_stress)


def test_a_memo_remembers_what_ran_out_of_memory_so_the_same_batch_is_split_untried():
    pot, cells = SmallDeviceMorse(dtype=torch.float64), _cells(11)
    memo = OutOfMemoryMemo()
    first, _ = guarded_evaluate(pot, Batch.from_structures(cells), memo=memo)
    assert any(oom for _, oom in pot.calls) and memo.too_big_atoms is not None
    pot.calls.clear()
    again, errors = guarded_evaluate(pot, Batch.from_structures(cells), memo=memo)
    assert errors == [None] * 11
    assert pot.calls and not any(oom for _, oom in pot.calls)
    torch.testing.assert_close(again.forces, first.forces)
    pot.calls.clear()  # without the memo, the doomed attempts come back
    guarded_evaluate(pot, Batch.from_structures(cells))
    assert any(oom for _, oom in pot.calls)


def test_a_relaxation_runs_out_of_memory_on_its_first_steps_only():
    pot = SmallDeviceMorse(dtype=torch.float64)
    cells = [s.copy() for s in _cells(9)]
    for s in cells:
        s.perturb(0.05, min_distance=0.01)
    results = relax(
        cells, pot, RelaxSettings(fmax=1e-3, max_steps=30), BatchBudget(max_atoms=10_000, max_edges=10**7)
    )
    assert all(r.error is None for r in results)
    steps = max(r.n_steps for r in results)
    failed = sum(oom for _, oom in pot.calls)
    assert steps >= 10 and failed <= 3  # not one failed call per step
