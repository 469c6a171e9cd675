"""A batch whose model call raises is bisected: only the culprits fail, in few calls."""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure

from mlipflows.engine import Batch
from mlipflows.engine.evaluate import guarded_evaluate
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
    assert CALLS == [11, 5, 2, 3, 6, 3, 3]  # one-by-one retries would have taken 12 calls
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
