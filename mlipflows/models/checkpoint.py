"""Checkpoints of our models: a plain dict of tensors and JSON-like primitives.

Layout (``format_version`` 1)::

    {"format": "mlipflows", "format_version": 1,
     "architecture": "mpnice", "config": {...constructor arguments...},
     "state_dict": {name: tensor}, "metadata": {"name", "version", "trained_on", ...},
     "training": {...the training config, when trained by ``mlipflows train``...}}

Everything loads with ``torch.load(weights_only=True)``: no pickled objects, so opening a
checkpoint runs no code from it. :func:`potential_from_checkpoint` is what
``load_potential(PATH)`` calls (via :mod:`mlipflows.potentials.custom`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from mlipflows.errors import ModelLoadError
from mlipflows.models.base import EnergyModel, build_model
from mlipflows.models.potential import ModelPotential
from mlipflows.potentials.base import ModelCard, file_checksum

log = logging.getLogger(__name__)

FORMAT = "mlipflows"
FORMAT_VERSION = 1


def checkpoint_dict(
    model: EnergyModel,
    metadata: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The checkpoint content of ``model`` (tensors copied to CPU)."""
    content = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": model.architecture,
        "config": model.get_config(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "metadata": metadata or {},
        "training": training or {},
    }
    for key in ("config", "metadata", "training"):
        try:
            json.dumps(content[key])
        except TypeError as exc:
            raise TypeError(f"checkpoint {key} must be JSON-like primitives: {exc}") from exc
    return content


def save_checkpoint(
    model: EnergyModel,
    path: str | Path,
    metadata: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` to ``path`` (parents created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint_dict(model, metadata, training), path)
    return path


# buffers added after checkpoints were shipped; an older file lacks them and their zeros are exact
ADDED_BUFFERS = {"readout.shift_z"}


def model_from_content(content: dict[str, Any]) -> EnergyModel:
    """Rebuild the model of a loaded checkpoint dict (saved precision, CPU, eval mode)."""
    if content.get("format") != FORMAT:
        raise ModelLoadError("not a mlipflows checkpoint (missing format='mlipflows')")
    if int(content.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelLoadError(
            f"checkpoint format_version {content['format_version']} is newer than this mlipflows "
            f"({FORMAT_VERSION}); upgrade mlipflows"
        )
    try:
        model = build_model(content["architecture"], dict(content["config"]))
    except (KeyError, TypeError) as exc:
        raise ModelLoadError(f"cannot rebuild the model of this checkpoint: {exc}") from exc
    # load into the precision the weights were saved in (a float64 model stays exact)
    saved = [t.dtype for t in content["state_dict"].values() if t.is_floating_point()]
    if saved:
        model = model.to(saved[0])
    missing, unexpected = model.load_state_dict(content["state_dict"], strict=False)
    missing = [k for k in missing if k not in ADDED_BUFFERS]
    if missing or unexpected:
        raise ModelLoadError(
            f"checkpoint weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model.eval()


def load_model(path: str | Path) -> tuple[EnergyModel, dict[str, Any]]:
    """(model, checkpoint content) from a file, read with ``weights_only=True``."""
    content = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(content, dict):
        raise ModelLoadError(f"{path}: not a mlipflows checkpoint")
    return model_from_content(content), content


def potential_from_checkpoint(
    path: Path,
    content: dict[str, Any],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    name: str | None = None,
    head: str | None = None,
) -> ModelPotential:
    """A warm :class:`ModelPotential` from a checkpoint already read with ``weights_only``.

    A multi-head model evaluates ``head`` (default: its first, with a warning naming the
    others); the head is part of its name and checksum, so two heads' results never mix."""
    model = model_from_content(content)
    meta = content.get("metadata", {})
    heads = list(model.readout.heads)
    if head is not None and head not in heads:
        raise ModelLoadError(f"{path}@{head}: no such head; this model has heads {heads}")
    label, checksum = name or str(meta.get("name") or Path(path).stem), file_checksum(path)
    if len(heads) > 1:
        if head is None:
            head = heads[0]
            log.warning(
                "%s has heads %s: evaluating %r, its first; write %s@HEAD for another (e.g. %s@%s)",
                path, heads, head, path, path, heads[-1],
            )  # fmt: skip
        label, checksum = f"{label}@{head}", f"{checksum}@{head}"
    card = ModelCard(
        name=label,
        version=str(meta.get("version", "1")),
        checksum=checksum,
        source=str(Path(path).resolve()),  # a document alone locates the weights
        cutoff=model.cutoff,
        elements=frozenset(model.elements),
    )
    return ModelPotential(model, card, device=device, dtype=dtype, head=head)


PACKAGED = Path(__file__).parents[1] / "data" / "models"


def load_packaged(
    name: str, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> ModelPotential:
    """A checkpoint shipped in ``mlipflows/data/models/<name>.pt`` (registry entries use this)."""
    path = PACKAGED / f"{name}.pt"
    if not path.is_file():
        raise ModelLoadError(f"packaged model {name!r} is missing ({path}); reinstall mlipflows")
    content = torch.load(path, map_location="cpu", weights_only=True)
    return potential_from_checkpoint(path, content, device=device, dtype=dtype, name=name)
