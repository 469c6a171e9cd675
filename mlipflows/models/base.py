"""The interface of our architectures and the registry that rebuilds them from checkpoints.

An :class:`EnergyModel` maps an :class:`~mlipflows.models.geometry.AtomicGraph` to energies per
structure (eV) and optionally charges per atom (e); forces and stress come from autograd in
:mod:`mlipflows.models.geometry`. It is rebuilt from ``config`` (JSON-like primitives only), so
checkpoints never hold pickled objects.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, ClassVar, TypeVar

import torch
from torch import nn

from mlipflows.models.geometry import AtomicGraph
from mlipflows.models.readout import MultiHeadReadout


class EnergyModel(nn.Module):
    """Base class of our architectures.

    Subclasses set ``architecture`` (the registry name), build ``readout`` (the multi-head
    readout whose E0/scale/shift the trainer fits) and implement :meth:`forward`.
    """

    architecture: ClassVar[str]
    readout: MultiHeadReadout

    def __init__(self, cutoff: float, elements: list[str], heads: list[str]) -> None:
        super().__init__()
        self.cutoff = float(cutoff)
        self.elements = list(elements)
        self.heads = list(heads)

    @abstractmethod
    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        """``{"energy": (S,) eV, "charges": (N,) e (if the model has them)}``."""

    def calibrate(self, graph: AtomicGraph) -> None:
        """Set data-derived normalisation buffers from training structures (default: none)."""

    @abstractmethod
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-like primitives: ``type(self)(**config)`` rebuilds it."""

    @classmethod
    def from_config(cls: type[M], config: dict[str, Any]) -> M:
        return cls(**config)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


M = TypeVar("M", bound=EnergyModel)

ARCHITECTURES: dict[str, type[EnergyModel]] = {}


def register_architecture(cls: type[M]) -> type[M]:
    """Class decorator: make ``cls`` loadable from checkpoints by its ``architecture`` name."""
    ARCHITECTURES[cls.architecture] = cls
    return cls


def known_architectures() -> dict[str, type[EnergyModel]]:
    """Every registered architecture (the built-in ones imported on first use)."""
    import mlipflows.models.mpnice  # noqa: F401  (registers "mpnice")
    from mlipflows.models import geodite, nequip_lr  # noqa: F401  (register "geodite", "nequip_lr")

    return ARCHITECTURES


def build_model(architecture: str, config: dict[str, Any]) -> EnergyModel:
    """Instantiate a registered architecture (importing the built-in ones on first use)."""
    known_architectures()
    if architecture not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {architecture!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[architecture].from_config(config)
