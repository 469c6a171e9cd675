"""Custom models: checkpoint paths and import paths ``pkg.module:factory``.

A bare checkpoint path is read with ``torch.load(weights_only=True)``: our own checkpoints and
CHGNet's load that way. SevenNet checkpoints pickle Python objects, so reading one runs code
from the file; that needs the explicit ``sevennet:PATH`` form, which says you trust the file.

A factory is called as ``factory(device=..., dtype=...)`` and must return a
:class:`~mlipflows.potentials.base.Potential`.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import torch

from mlipflows.errors import ModelLoadError
from mlipflows.potentials.base import Potential


def load_import_path(spec: str, device: torch.device, dtype: torch.dtype) -> Potential:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"cannot import module {module_name!r} of model spec {spec!r}: {exc} (is its folder on "
            "PYTHONPATH? the current directory is not searched)"
        ) from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise ModelLoadError(f"module {module_name!r} has no attribute {attr!r} (model spec {spec!r})")
    try:
        potential = factory(device=device, dtype=dtype)
    except TypeError as exc:  # the commonest mistake: a factory without these keywords
        raise ModelLoadError(
            f"{spec}: a model factory is called as factory(device=..., dtype=...) and returns a "
            f"mlipflows Potential; this one failed: {exc}"
        ) from exc
    if not isinstance(potential, Potential):
        raise ModelLoadError(f"{spec} returned {type(potential).__name__}, not a mlipflows Potential")
    return potential


def load_checkpoint(
    path: Path, device: torch.device, dtype: torch.dtype, head: str | None = None
) -> Potential:
    """Recognise a checkpoint by its contents and build the matching adapter (``head``: one
    readout head of a multi-head mlipflows checkpoint)."""
    from mlipflows.io import STRUCTURE_SUFFIXES, VASP_NAMES

    if path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.upper().startswith(VASP_NAMES):
        raise ModelLoadError(
            f"--model {path} is a structure file, not a model: structures go before the options, "
            "the model is a registry name (mlipflows models), a checkpoint or pkg.module:factory"
        )
    try:
        # weights_only=False would unpickle arbitrary objects; SevenNet and CHGNet checkpoints are
        # plain tensors and dicts, so the safe loader reads them.
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"{path} cannot be read safely (torch.load weights_only=True: {str(exc)[:120]}...). "
            "If it is a SevenNet or CHGNet checkpoint from a source you trust, load it as "
            f"sevennet:{path} or chgnet:{path} (those loaders unpickle arbitrary objects)."
        ) from exc
    if not isinstance(content, dict):
        raise ModelLoadError(f"{path}: unrecognised checkpoint layout ({type(content).__name__})")
    if content.get("format") == "mlipflows":
        from mlipflows.models.checkpoint import potential_from_checkpoint

        return potential_from_checkpoint(path, content, device=device, dtype=dtype, head=head)
    if head is not None:
        raise ModelLoadError(f"{path}@{head}: only mlipflows checkpoints have named heads")
    if "model" in content and "model_args" in content.get("model", {}):
        from mlipflows.potentials.chgnet import CHGNetPotential

        return CHGNetPotential(path, name=path.stem, device=device)
    raise ModelLoadError(
        f"{path}: not a SevenNet, CHGNet or mlipflows checkpoint (keys: {sorted(content)[:8]})"
    )


def load_trusted(kind: str, path: Path, device: torch.device) -> Potential:
    """``sevennet:PATH`` / ``chgnet:PATH``: the package's own loader, which unpickles.
    ``sevennet:PATH@MODAL`` picks a fidelity of a multi-fidelity SevenNet checkpoint."""
    modal = None
    if not path.is_file() and "@" in path.name:
        path, modal = path.with_name(path.name.rpartition("@")[0]), path.name.rpartition("@")[2]
    if not path.is_file():
        raise ModelLoadError(f"{kind}:{path}: no such checkpoint file")
    if kind == "sevennet":
        from mlipflows.potentials.sevennet import SevenNetPotential

        return SevenNetPotential(path, name=path.stem, device=device, modal=modal)
    if modal is not None:
        raise ModelLoadError(f"{kind}:{path}@{modal}: only SevenNet checkpoints have modals")
    from mlipflows.potentials.chgnet import CHGNetPotential

    return CHGNetPotential(path, name=path.stem, device=device)
