"""SevenNet (sevenn) checkpoints evaluated as one batched graph per call.

Builds sevenn's batched ``AtomGraphData`` directly from our flat batch and neighbour list
(no per-structure ASE/graph objects), so a whole batch is one forward + one backward pass.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from mlipflows.engine.batch import Batch
from mlipflows.engine.neighbors import neighbor_list
from mlipflows.errors import ModelLoadError
from mlipflows.potentials.base import (
    ModelCard,
    Potential,
    PotentialOutput,
    file_checksum,
    symbols_from_numbers,
)

# SevenNet-0 measured on an H200 (float32); l3i5 (l_max 3, 5 layers) scaled by its CPU
# peak-memory ratio to SevenNet-0 on the same batch (272 vs 131 kB per edge: 2.07x), not
# measured on a GPU
PRETRAINED_GPU_BYTES_PER_EDGE = {"sevennet-0": 116_000, "sevennet-l3i5": 240_000}


def pretrained_path(name: str) -> Path:
    """Path of a checkpoint that ships inside the sevenn wheel (no download)."""
    from sevenn import _const

    attr = {"sevennet-0": "SEVENNET_0_11Jul2024", "sevennet-l3i5": "SEVENNET_l3i5"}[name]
    path = Path(getattr(_const, attr))
    if not path.is_file():
        raise ModelLoadError(
            f"{name}: checkpoint {path} is not inside the installed sevenn wheel; "
            "reinstall sevenn (pip install --force-reinstall sevenn)"
        )
    return path


class SevenNetPotential(Potential):
    """A SevenNet model in float32 (sevenn's own precision) or float64.

    float64 matters for finite differences of forces (third-order force constants): in
    float32 the energy noise of a 64-atom cell (~1e-4 eV) is as large as the energy changes
    of 0.01 Å displacements, so central differences of float32 energies miss the forces by
    ~1 %, while float64 agrees to 1e-5 eV/Å at ~2× the cost.
    """

    memory_scales_with = "n_edges"
    # 64-atom cells, quiet machine: the best per-atom cost at ~3.3k edges with one thread and
    # with two; 1.08-1.19x at 6.7k, 1.5x at 13k, 1.9x at 27k (the edge tensors outgrow the caches)
    cpu_max_edges = 4_000

    def __init__(
        self,
        checkpoint: str | Path,
        name: str | None = None,
        device: torch.device | str = "cpu",
        modal: str | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        import sevenn._keys as KEY
        from sevenn.util import load_checkpoint

        self._key = KEY
        if dtype not in (torch.float32, torch.float64):
            raise ModelLoadError(f"SevenNet runs in float32 or float64, not {dtype}")
        try:
            cp = load_checkpoint(str(checkpoint))
            model = cp.build_model() if dtype == torch.float32 else _build_float64(cp)
        except Exception as exc:
            raise ModelLoadError(f"could not load SevenNet checkpoint {checkpoint}: {exc}") from exc
        model.set_is_batch_data(True)
        model.eval_type_map = torch.tensor(True)
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.dtype = dtype
        self.modal = modal
        if model.modal_map and modal is None:
            raise ModelLoadError(
                f"{checkpoint} is multi-fidelity; choose a modal of {list(model.modal_map)}: "
                f"sevennet:{checkpoint}@MODAL"
            )
        if modal is not None and modal not in (model.modal_map or {}):
            raise ModelLoadError(f"{checkpoint}: no modal {modal!r}; it has {list(model.modal_map or {})}")
        import sevenn

        fidelity = f"@{modal}" if modal else ""  # each fidelity is a model of its own
        self.card = ModelCard(
            name=(name or Path(checkpoint).stem) + fidelity,
            version=f"sevenn-{sevenn.__version__}" + ("-float64" if dtype == torch.float64 else ""),
            # float64 is numerically another model: its stored results must not mix with float32's
            checksum=(
                file_checksum(checkpoint)
                if dtype == torch.float32
                else hashlib.sha256(f"{file_checksum(checkpoint)}-float64".encode()).hexdigest()
            )
            + fidelity,
            source=str(Path(checkpoint).resolve()),
            cutoff=float(model.cutoff),
            elements=symbols_from_numbers(list(model.type_map)),
        )

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        from sevenn.atom_graph_data import AtomGraphData

        KEY = self._key
        b = batch.to(self.device, self.dtype)
        graph = neighbor_list(b, self.card.cutoff)
        n_atoms = b.n_atoms
        data = AtomGraphData(
            x=b.atomic_numbers,
            **{
                KEY.ATOMIC_NUMBERS: b.atomic_numbers,
                KEY.POS: b.positions,
                KEY.EDGE_IDX: graph.edge_index,
                # forces and virial come from ∂E/∂r_ij, so edge vectors are the leaves
                KEY.EDGE_VEC: graph.edge_vectors(b.positions, b.cell).detach(),
                KEY.CELL: b.cell,
                KEY.CELL_SHIFT: graph.unit_shifts,
                KEY.CELL_VOLUME: torch.linalg.det(b.cell).abs(),
                KEY.NUM_ATOMS: n_atoms,
                KEY.BATCH: b.system_idx,
            },
        )
        if self.modal is not None:
            data[KEY.DATA_MODALITY] = [self.modal] * b.n_systems
        out = self.model(data)
        energy = out[KEY.PRED_TOTAL_ENERGY].detach().reshape(-1)
        forces = out[KEY.PRED_FORCE].detach()
        stress = None
        if compute_stress:
            # sevenn returns -σ (eV/Å³) in the order xx, yy, zz, xy, yz, zx
            v = -out[KEY.PRED_STRESS].detach().reshape(-1, 6)
            stress = torch.stack(
                [
                    torch.stack([v[:, 0], v[:, 3], v[:, 5]], -1),
                    torch.stack([v[:, 3], v[:, 1], v[:, 4]], -1),
                    torch.stack([v[:, 5], v[:, 4], v[:, 2]], -1),
                ],
                1,
            )
        return PotentialOutput(energy=energy, forces=forces, stress=stress)


def _build_float64(checkpoint: object) -> torch.nn.Module:
    """The checkpoint's model with float64 weights and float64 e3nn code.

    e3nn generates its kernels in the default dtype when the model is built, so the model is
    built under a float64 default; sevenn's one-hot embedding casts with ``.float()``, so a
    hook promotes its output.
    """
    from sevenn.nn.node_embedding import OnehotEmbedding

    state = checkpoint.model_state_dict  # type: ignore[attr-defined]
    checkpoint._model_state_dict = {  # type: ignore[attr-defined]
        k: v.double() if v.is_floating_point() else v for k, v in state.items()
    }
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = checkpoint.build_model()  # type: ignore[attr-defined]
    finally:
        torch.set_default_dtype(previous)

    def promote(module: OnehotEmbedding, _inputs: object, data: dict) -> dict:
        for key in (module.key_output, module.key_additional_output):
            if key is not None:
                data[key] = data[key].double()
        return data

    for module in model.modules():
        if isinstance(module, OnehotEmbedding):
            module.register_forward_hook(promote)
    return model.double()
