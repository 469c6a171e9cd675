"""Our models behind the batched :class:`~mlipflows.potentials.base.Potential` interface."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mlipflows.engine.batch import Batch
from mlipflows.models.base import EnergyModel
from mlipflows.models.geometry import build_graph, forces_and_stress
from mlipflows.potentials.base import ModelCard, Potential, PotentialOutput


@dataclass
class Prediction:
    """energy (S,) eV, forces (N, 3) eV/Å, stress (S, 3, 3) eV/Å³ or None, charges (N,) e or None."""

    energy: torch.Tensor
    forces: torch.Tensor
    stress: torch.Tensor | None
    charges: torch.Tensor | None


def predict(
    model: EnergyModel,
    batch: Batch,
    compute_stress: bool = True,
    total_charge: torch.Tensor | None = None,
    head: torch.Tensor | None = None,
    create_graph: bool = False,
) -> Prediction:
    """Energy, forces (autograd through the whole charge pipeline), stress and charges.

    Args:
        total_charge: (S,) net charge per structure, e (default neutral).
        head: (S,) readout head index per structure (default head 0).
        create_graph: keep the graph of forces/stress (training losses need it).
    """
    graph, inputs = build_graph(batch, model.cutoff, total_charge, head)
    out = model(graph)
    forces, stress = forces_and_stress(out["energy"], inputs, compute_stress, create_graph)
    return Prediction(out["energy"], forces, stress, out.get("charges"))


class ModelPotential(Potential):
    """A trained :class:`EnergyModel` as a warm potential (float32 or float64).

    ``head`` picks the readout head used by :meth:`evaluate` (default: the first head).
    """

    memory_scales_with = "n_edges"

    def __init__(
        self,
        model: EnergyModel,
        card: ModelCard,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        head: str | None = None,
    ) -> None:
        self.device, self.dtype = torch.device(device), dtype
        self.model = model.to(device=self.device, dtype=dtype).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.card = card
        self.head = self.model.readout.head_index(head)
        self.max_atoms_per_call = getattr(self.model, "max_atoms_per_call", None)

    def predict(
        self, batch: Batch, compute_stress: bool = True, total_charge: torch.Tensor | None = None
    ) -> Prediction:
        """Like :meth:`evaluate`, plus per-atom charges and a per-structure total charge input."""
        b = batch.to(self.device, self.dtype)
        head = torch.full((b.n_systems,), self.head, dtype=torch.long, device=self.device)
        p = predict(self.model, b, compute_stress, total_charge, head)
        detach = lambda t: None if t is None else t.detach()  # noqa: E731
        return Prediction(detach(p.energy), detach(p.forces), detach(p.stress), detach(p.charges))

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        p = self.predict(batch, compute_stress)
        return PotentialOutput(energy=p.energy, forces=p.forces, stress=p.stress)
