"""The one batched interface every model (pretrained, custom, ours) is adapted to."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from pymatgen.core import Element

if TYPE_CHECKING:
    from mlipflows.engine.batch import Batch

EV_PER_A3_TO_GPA = 160.21766208


@dataclass
class PotentialOutput:
    """Results of one batched evaluation.

    Attributes:
        energy: (S,) total energy per system, eV.
        forces: (N, 3) forces, eV/Å.
        stress: (S, 3, 3) Cauchy stress, eV/Å³, ASE sign convention (σ = (1/V) ∂E/∂ε, so a
            compressed cell has negative stress); ``None`` when not requested.
    """

    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor | None = None


@dataclass
class ModelCard:
    """What a loaded potential is, for documents and the ``models`` table."""

    name: str
    version: str
    checksum: str
    source: str
    cutoff: float
    elements: frozenset[str] = field(default_factory=frozenset)


class Potential(ABC):
    """A warm model that evaluates a whole :class:`Batch` per call.

    Subclasses implement :meth:`evaluate`. ``memory_scales_with`` tells the autobatcher whether
    cost grows with atoms or with edges (atoms × density). ``cpu_max_edges`` is the edges per
    call on a CPU beyond which a bigger batch costs more per atom, not less
    (``benchmarks/cpu_batch_size.py``). ``gpu_bytes_per_edge`` is the device memory one edge
    takes through a forward and backward pass in float32: GPU batches are sized from it and
    the free memory. ``max_atoms_per_call`` caps every batch's atoms, on any device, for
    models whose memory grows as the square of a batch's atoms.
    """

    card: ModelCard
    device: torch.device
    dtype: torch.dtype
    memory_scales_with: Literal["n_atoms", "n_edges"] = "n_edges"
    cpu_max_edges: int = 16_000
    # SevenNet-0 on an H200: 113.7-113.9 kB per edge (benchmarks/results/gpu-h200-2026-12-04);
    # the models we train are lighter, so for them it is a cautious default
    gpu_bytes_per_edge: int = 116_000
    # a model that builds dense per-batch matrices (exact Qeq: N² floats) caps its batches
    max_atoms_per_call: int | None = None

    def adopt_batching(self, base: Potential) -> None:
        """Take ``base``'s batching limits: a wrapper (+d3, +zbl) batches as its model does."""
        self.memory_scales_with, self.cpu_max_edges = base.memory_scales_with, base.cpu_max_edges
        self.gpu_bytes_per_edge, self.max_atoms_per_call = base.gpu_bytes_per_edge, base.max_atoms_per_call

    @abstractmethod
    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        """Energy (eV), forces (eV/Å) and stress (eV/Å³) of every system in ``batch``."""

    @property
    def name(self) -> str:
        return self.card.name

    @property
    def cutoff(self) -> float:
        return self.card.cutoff

    @property
    def elements(self) -> frozenset[str]:
        return self.card.elements

    def unsupported_elements(self, symbols: set[str]) -> list[str]:
        """Elements of ``symbols`` this model does not cover (empty = all covered)."""
        if not self.card.elements:
            return []
        return sorted(symbols - self.card.elements)


def file_checksum(path: str | Path) -> str:
    """sha256 of a weights file, so a document says exactly which weights made it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def state_dict_checksum(module: torch.nn.Module) -> str:
    """sha256 over a module's parameters and buffers (for models built in memory)."""
    h = hashlib.sha256()
    for key, value in sorted(module.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return "sha256:" + h.hexdigest()


def symbols_from_numbers(numbers: list[int]) -> frozenset[str]:
    return frozenset(Element.from_Z(int(z)).symbol for z in numbers)


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' → cuda when available, else cpu.

    Raises:
        ModelLoadError: not a device name torch knows, or CUDA asked for where there is none.
    """
    from mlipflows.errors import ModelLoadError

    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ModelLoadError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ModelLoadError(f"unknown device {device!r}: use cpu, cuda, cuda:N or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device} requested but CUDA is not available; use --device cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ModelLoadError(
            f"device {device} requested but this machine has {torch.cuda.device_count()} GPU(s)"
        )
    return dev
