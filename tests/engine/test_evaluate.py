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
    return [
        Structure(Lattice.cubic(3.5 + 0.02 * i), ["Ar" if i == argon_at else "Cu"], [[0, 0, 0]]) * 2
        for i in range(n)
    ]


def test_too_big_a_batch_is_halved_until_it_fits_and_agrees_with_single_calls():
    pot, cells = FussyMorse(dtype=torch.float64), _cells(16)
    CALLS.clear()
    out, errors = guarded_evaluate(pot, Batch.from_structures(cells))
    assert errors == [None] * 16
    assert CALLS == [16, 8, 4, 4, 8, 4, 4]  # one-by-one retries would have taken 17 calls
    for i, s in enumerate(cells):
        alone, _ = guarded_evaluate(pot, Batch.from_structures([s]))
        assert float(out.energy[i]) == pytest.approx(float(alone.energy[0]), abs=1e-12)
        torch.testing.assert_close(out.forces[8 * i : 8 * i + 8], alone.forces)
        torch.testing.assert_close(out.stress[i], alone.stress[0])


def test_a_structure_the_model_cannot_take_fails_alone_in_log_n_calls():
    pot, cells = FussyMorse(dtype=torch.float64), _cells(4, argon_at=2)
    CALLS.clear()
    out, errors = guarded_evaluate(pot, Batch.from_structures(cells))
    assert CALLS == [4, 2, 2, 1, 1]
    assert errors[2] == "morse failed on this structure: RuntimeError: simulated model failure on Ar"
    assert [e is None for e in errors] == [True, True, False, True]
    assert torch.isnan(out.energy[2]) and torch.isfinite(out.energy[[0, 1, 3]]).all()
    assert torch.isnan(out.forces[16:24]).all() and torch.isfinite(out.forces[:16]).all()


def test_a_batch_nothing_of_which_evaluates_raises_the_models_error():
    pot = FussyMorse(dtype=torch.float64)
    argon = [Structure(Lattice.cubic(5.3), ["Ar"], [[0, 0, 0]])] * 3
    with pytest.raises(RuntimeError, match="simulated model failure on Ar"):
        guarded_evaluate(pot, Batch.from_structures(argon))
