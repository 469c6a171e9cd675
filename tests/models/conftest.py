from __future__ import annotations

import pytest
import torch

from mlipflows.models.mpnice import MPNICE


def tiny_mpnice(seed: int = 0, **overrides: object) -> MPNICE:
    """A small random-weight MPNICE in float64 with O(1) eV interaction energies."""
    torch.manual_seed(seed)
    cfg = dict(
        elements=["H", "O", "Na", "Si", "Cl"],
        heads=["pbe", "r2scan"],
        cutoff=4.0,
        n_channels=8,
        n_angular=4,
        n_charge_features=4,
        n_radial=6,
        hidden=16,
        n_blocks=2,
        avg_neighbors=2.0,
        ewald_cutoff=6.0,
        ewald_accuracy=1e-10,
    )
    cfg.update(overrides)
    model = MPNICE(**cfg).double()
    model.readout.scale.fill_(3.0)
    model.readout.shift.copy_(torch.tensor([0.1, -0.2]))
    model.readout.e0.normal_()
    return model


@pytest.fixture
def model() -> MPNICE:
    return tiny_mpnice()
