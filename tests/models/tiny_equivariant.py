"""Tiny random-weight equivariant models (float64) shared by the part-2 physics tests."""

from __future__ import annotations

from collections.abc import Callable

import torch

from mlipflows.models.base import EnergyModel
from mlipflows.models.geodite import Geodite
from mlipflows.models.nequip_lr import NequIPLR
from tests.models.conftest import tiny_mpnice

ELEMENTS = ["H", "O", "Na", "Si", "Cl"]


def _finish(model: EnergyModel) -> EnergyModel:
    """float64, O(1) eV interaction energies, random E0 so that E0 checks are not trivial."""
    model = model.double()
    model.readout.scale.fill_(3.0)
    model.readout.shift.copy_(torch.linspace(0.1, -0.2, len(model.heads), dtype=torch.float64))
    model.readout.e0.normal_()
    return model


def tiny_geodite(seed: int = 0, **overrides: object) -> Geodite:
    torch.manual_seed(seed)
    cfg: dict[str, object] = dict(
        elements=ELEMENTS,
        heads=["pbe", "r2scan"],
        cutoff=4.0,
        n_channels=6,
        n_radial=6,
        hidden=12,
        n_blocks=2,
        avg_neighbors=2.0,
    )
    cfg.update(overrides)
    return _finish(Geodite(**cfg))


def tiny_nequip_lr(seed: int = 0, **overrides: object) -> NequIPLR:
    torch.manual_seed(seed)
    cfg: dict[str, object] = dict(
        elements=ELEMENTS,
        heads=["pbe", "r2scan"],
        cutoff=4.0,
        n_scalars=6,
        n_vectors=3,
        n_tensors=2,
        n_radial=6,
        radial_hidden=8,
        hidden=12,
        n_blocks_short=1,
        n_blocks_charge=1,
        avg_neighbors=2.0,
        ewald_cutoff=6.0,
        ewald_accuracy=1e-10,
    )
    cfg.update(overrides)
    return _finish(NequIPLR(**cfg))


# part 1's MPNICE-style model runs through the same physics suite
FACTORIES: dict[str, Callable[..., EnergyModel]] = {
    "geodite": tiny_geodite,
    "mpnice": tiny_mpnice,
    "nequip_lr": tiny_nequip_lr,
}
# options that leave only the short-range, cutoff-limited part (no ZBL, no long-range Coulomb)
SHORT_RANGE: dict[str, dict[str, object]] = {
    "geodite": {"zbl": False},
    "mpnice": {"zbl": False, "electrostatics": False},
    "nequip_lr": {"zbl": False, "electrostatics": False},
}
