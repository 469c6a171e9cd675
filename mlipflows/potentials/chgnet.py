"""CHGNet evaluated as one batched call (its own crystal graphs, one forward for the batch)."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from mlipflows.engine.batch import Batch
from mlipflows.errors import ModelLoadError
from mlipflows.potentials.base import (
    EV_PER_A3_TO_GPA,
    ModelCard,
    Potential,
    PotentialOutput,
    file_checksum,
    symbols_from_numbers,
)

_PACKAGED = {
    "0.3.0": "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    "0.2.0": "pretrained/0.2.0/chgnet_0.2.0_e30f77s348m32.pth.tar",
}


def pretrained_path(version: str) -> Path:
    """Path of the weights shipped inside the chgnet wheel (no download)."""
    import chgnet

    path = Path(chgnet.__file__).parent / _PACKAGED[version]
    if not path.is_file():
        raise ModelLoadError(f"CHGNet {version} weights are not in the installed chgnet wheel ({path})")
    return path


class CHGNetPotential(Potential):
    """CHGNet (float32). Energies are intensive in CHGNet; we return totals."""

    memory_scales_with = "n_edges"

    def __init__(
        self,
        checkpoint: str | Path,
        name: str,
        version: str | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        from chgnet.model import CHGNet

        try:
            # CHGNet prints "CHGNet v... initialized with N parameters" on load: not our user's business
            with contextlib.redirect_stdout(io.StringIO()):
                bias = version == "0.2.0"
                try:
                    model = CHGNet.from_file(str(checkpoint), mlp_out_bias=bias, version=version)
                except RuntimeError as exc:  # a 0.2.0 file given by path: its layers have biases
                    if bias or "mlp_out" not in str(exc):
                        raise
                    model = CHGNet.from_file(str(checkpoint), mlp_out_bias=True, version=version)
        except Exception as exc:
            raise ModelLoadError(f"could not load CHGNet checkpoint {checkpoint}: {exc}") from exc
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.card = ModelCard(
            name=name,
            version=f"chgnet-{version or 'custom'}",
            checksum=file_checksum(checkpoint),
            source=str(Path(checkpoint).resolve()),
            cutoff=float(model.graph_converter.atom_graph_cutoff),
            # CHGNet's embedding covers Z = 1..94
            elements=symbols_from_numbers(list(range(1, 95))),
        )

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        structures = batch.to_structures()
        graphs = [self.model.graph_converter(s).to(self.device) for s in structures]
        task = "efs" if compute_stress else "ef"
        pred = self.model(graphs, task=task)
        n_atoms = batch.n_atoms.to(self.device)
        energy = pred["e"].detach().reshape(-1) * n_atoms
        forces = torch.cat([f.detach() for f in pred["f"]])
        stress = None
        if compute_stress:
            stress = torch.stack([s.detach() for s in pred["s"]]) / EV_PER_A3_TO_GPA
        return PotentialOutput(energy=energy, forces=forces, stress=stress)
