"""Registry of named potentials: name → how to load it offline and what it is."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mlipflows.potentials.base import Potential


@dataclass(frozen=True)
class RegistryEntry:
    """A named model: its loader, where its weights come from, and a one-line description."""

    name: str
    loader: Callable[[torch.device, torch.dtype], Potential]
    source: str
    description: str


def _sevennet(name: str) -> Callable[[torch.device, torch.dtype], Potential]:
    def load(device: torch.device, dtype: torch.dtype) -> Potential:
        from mlipflows.potentials.sevennet import (
            PRETRAINED_GPU_BYTES_PER_EDGE,
            SevenNetPotential,
            pretrained_path,
        )

        pot = SevenNetPotential(pretrained_path(name), name=name, device=device, dtype=dtype)
        pot.gpu_bytes_per_edge = PRETRAINED_GPU_BYTES_PER_EDGE[name]
        return pot

    return load


def _chgnet(device: torch.device, dtype: torch.dtype) -> Potential:
    from mlipflows.potentials.chgnet import CHGNetPotential, pretrained_path

    return CHGNetPotential(pretrained_path("0.3.0"), name="chgnet-0.3.0", version="0.3.0", device=device)


def _morse(device: torch.device, dtype: torch.dtype) -> Potential:
    from mlipflows.potentials.morse import MorsePotential

    return MorsePotential(device=device, dtype=dtype)


def _packaged(name: str) -> Callable[[torch.device, torch.dtype], Potential]:
    def load(device: torch.device, dtype: torch.dtype) -> Potential:
        from mlipflows.models.checkpoint import load_packaged

        return load_packaged(name, device=device, dtype=dtype)

    return load


REGISTRY: dict[str, RegistryEntry] = {
    e.name: e
    for e in [
        RegistryEntry(
            "sevennet-0",
            _sevennet("sevennet-0"),
            "sevenn wheel (SevenNet-0 11Jul2024)",
            "SevenNet-0, equivariant GNN trained on MPtrj (PBE/PBE+U)",
        ),
        RegistryEntry(
            "sevennet-l3i5",
            _sevennet("sevennet-l3i5"),
            "sevenn wheel (SevenNet-l3i5)",
            "SevenNet with l_max=3, 5 interaction layers, trained on MPtrj",
        ),
        RegistryEntry(
            "chgnet-0.3.0",
            _chgnet,
            "chgnet wheel (0.3.0)",
            "CHGNet 0.3.0, charge-informed GNN trained on MPtrj",
        ),
        RegistryEntry(
            "morse",
            _morse,
            "analytic (no weights)",
            "Morse pairs from covalent radii; for tests and smoke campaigns, not for science",
        ),
        RegistryEntry(
            "mpnice-si-mlearn",
            _packaged("mpnice-si-mlearn"),
            "mlipflows/data/models/mpnice-si-mlearn.pt (trained with analysis/models/mpnice-si-mlearn.yaml)",
            "our MPNICE-style model, small, trained on mlearn Si (PBE; Zuo et al. 2020); Si only",
        ),
        RegistryEntry(
            "mpnice-sevennet-0",
            _packaged("mpnice-sevennet-0"),
            "mlipflows/data/models/mpnice-sevennet-0.pt (`mlipflows distill --label`; analysis/models/)",
            "our MPNICE-style student of SevenNet-0 (no electrostatics), distilled on SevenNet-0's labels "
            "of WBM/MP structures, prototypes, rattled copies and relaxation frames; the base of "
            "surrogate campaigns",
        ),
        RegistryEntry(
            "geodite-si-mlearn",
            _packaged("geodite-si-mlearn"),
            "mlipflows/data/models/geodite-si-mlearn.pt (analysis/models/geodite-si-mlearn.yaml)",
            "our Geodite-style equivariant model (no tensor products), small, trained on mlearn Si; Si only",
        ),
        RegistryEntry(
            "nequip-lr-si-mlearn",
            _packaged("nequip-lr-si-mlearn"),
            "mlipflows/data/models/nequip-lr-si-mlearn.pt (analysis/models/nequip-lr-si-mlearn.yaml)",
            "our NequIP-LR-style model (e3nn + exact global Qeq), small, trained on mlearn Si; Si only",
        ),
    ]
}


def register(entry: RegistryEntry) -> None:
    """Add a named model (e.g. our own trained checkpoints) to the registry."""
    REGISTRY[entry.name] = entry
