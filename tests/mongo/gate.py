"""Morse potential that records each load and can be held at a gate, for worker tests.

Loadable by ``rlaunch`` workers as ``tests.mongo.gate:gated_morse`` (repository root on
``PYTHONPATH``). ``$MLIPFLOWS_TEST_LOADS``: a file that gets one line (the process id) per
model load. ``$MLIPFLOWS_TEST_GATE``: while that file exists, evaluations wait, after writing
``<gate>.entered`` — so a test can kill a worker, or stop the server, at a known point.
``$MLIPFLOWS_TEST_GATE_MIN_ATOMS``: only batches holding a system at least that large wait
(phonon supercells do, the small cells of the relaxations do not): a kill inside a funnel stage.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from mlipflows.engine.batch import Batch
from mlipflows.potentials.base import Potential, PotentialOutput
from mlipflows.potentials.morse import MorsePotential

GATE_TIMEOUT_S = 120.0


class GatedMorse(MorsePotential):
    """Morse whose ``evaluate`` waits while the gate file exists."""

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        gate = os.environ.get("MLIPFLOWS_TEST_GATE")
        min_atoms = int(os.environ.get("MLIPFLOWS_TEST_GATE_MIN_ATOMS", "0"))
        large = bool(min_atoms) and int(batch.n_atoms.max()) >= min_atoms
        if gate and Path(gate).exists() and (not min_atoms or large):
            Path(f"{gate}.entered").write_text(str(os.getpid()))
            deadline = time.monotonic() + GATE_TIMEOUT_S
            while Path(gate).exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return super().evaluate(batch, compute_stress)


def gated_morse(device: str = "cpu", dtype: torch.dtype = torch.float64) -> Potential:
    loads = os.environ.get("MLIPFLOWS_TEST_LOADS")
    if loads:
        with open(loads, "a") as fh:
            fh.write(f"{os.getpid()}\n")
    pot = GatedMorse(device=device, dtype=torch.float64)
    pot.card.name = "gated-morse"
    return pot
