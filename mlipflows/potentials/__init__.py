"""Which MLIP: registry names, checkpoint paths and import paths, all behind one batched interface.

>>> pot = load_potential("sevennet-0")          # weights from the sevenn wheel, offline
>>> out = pot.evaluate(Batch.from_structures(structures))
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch

from mlipflows.errors import ModelLoadError
from mlipflows.potentials.base import ModelCard, Potential, PotentialOutput, resolve_device
from mlipflows.potentials.registry import REGISTRY, RegistryEntry, register

# ``MODEL+d3`` (or ``MODEL+d3:XC``) adds Grimme D3(BJ) dispersion to any model, ``MODEL+zbl`` a
# repulsive nuclear core; they chain (``sevennet-0+zbl+d3``)
D3_SUFFIX = "+d3"
ZBL_SUFFIX = "+zbl"

__all__ = [
    "REGISTRY",
    "ModelCard",
    "Potential",
    "PotentialOutput",
    "RegistryEntry",
    "clear_cache",
    "load_potential",
    "register",
]

_CACHE: dict[tuple[str, str, str], Potential] = {}
_LOCK = threading.Lock()


def load_potential(
    spec: str,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | str = torch.float32,
) -> Potential:
    """Load (once per process) the potential named by ``spec``.

    Args:
        spec: a registry name (``mlipflows models`` lists them), a checkpoint path (read
            with ``weights_only=True``; ``PATH@HEAD`` picks a head of a multi-head one),
            ``sevennet:PATH`` / ``chgnet:PATH`` for checkpoints of those packages that you
            trust (their loaders unpickle), or an import path ``package.module:factory``.
        device: "cpu", "cuda", "cuda:N" or "auto".
        dtype: preferred float dtype; models that support only float32 (CHGNet, Morse uses its own)
            ignore it.
    """
    dev = resolve_device(device)
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    key = (spec, str(dev), str(dtype))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = _load_uncached(spec, dev, dtype)
        return _CACHE[key]


def clear_cache() -> None:
    """Forget loaded models (frees their memory once no other reference is held)."""
    with _LOCK:
        _CACHE.clear()


def _load_uncached(spec: str, device: torch.device, dtype: torch.dtype) -> Potential:
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(f"device {device} requested but CUDA is not available; use --device cpu")
    if device.type == "cpu":
        from mlipflows.engine.cpu_memory import tune_cpu_allocator

        tune_cpu_allocator()
    if spec in REGISTRY:
        return REGISTRY[spec].loader(device, dtype)
    wrapped = _load_wrapped(spec, device, dtype)
    if wrapped is not None:
        return wrapped
    kind, _, rest = spec.partition(":")
    if kind in ("sevennet", "chgnet") and rest:
        from mlipflows.potentials.custom import load_trusted

        return load_trusted(kind, Path(rest).expanduser(), device)
    path = Path(spec).expanduser()
    if path.is_file():
        from mlipflows.potentials.custom import load_checkpoint

        return load_checkpoint(path, device, dtype)
    file, at, head = spec.rpartition("@")
    if at and Path(file).expanduser().is_file():  # CHECKPOINT@HEAD: one head of a multi-head model
        from mlipflows.potentials.custom import load_checkpoint

        return load_checkpoint(Path(file).expanduser(), device, dtype, head=head)
    if ":" in spec and not path.exists():
        from mlipflows.potentials.custom import load_import_path

        return load_import_path(spec, device, dtype)
    import difflib

    close = [n for n in REGISTRY if n.lower() == spec.lower()] or difflib.get_close_matches(
        spec, sorted(REGISTRY), n=2, cutoff=0.6
    )
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ModelLoadError(
        f"unknown model {spec!r}: {hint}not a registry name ({', '.join(sorted(REGISTRY))}), "
        "not an existing checkpoint file, and not an import path 'package.module:factory'"
    )


def _load_wrapped(spec: str, device: torch.device, dtype: torch.dtype) -> Potential | None:
    """``BASE+zbl`` / ``BASE+d3[:XC]`` (outermost suffix last), or None for a plain spec."""
    if Path(spec).expanduser().exists():
        return None  # a checkpoint file whose name happens to hold "+d3"
    base, sep, tail = spec.rpartition("+")
    if not sep or not base:
        return None
    applied = [t.split(":")[0] for t in spec.split("+")[1:]]
    twice = sorted({t for t in applied if applied.count(t) > 1 and t in ("zbl", "d3")})
    if twice:  # a second core or a second dispersion would count the same physics twice
        raise ModelLoadError(f"cannot load {spec!r}: +{twice[0]} is given twice; once is enough")
    try:
        if tail == ZBL_SUFFIX[1:]:
            from mlipflows.potentials.repulsion import RepulsiveCore

            return RepulsiveCore(_load_uncached(base, device, dtype))
        if tail == D3_SUFFIX[1:] or tail.startswith(D3_SUFFIX[1:] + ":"):
            from mlipflows.potentials.dispersion import DispersionCorrected, split_dispersion

            _, xc = split_dispersion(spec)
            return DispersionCorrected(_load_uncached(base, device, dtype), xc)
    except ValueError as err:
        raise ModelLoadError(f"cannot load {spec!r}: {err}") from err
    if tail.lower().startswith(("d", "zbl")) or tail.lower() in ("d3", "zbl"):
        # +ZBL, +D3, +d4, +zbl2: a suffix, misspelt; the base alone is not what was asked
        raise ModelLoadError(
            f"cannot load {spec!r}: +{tail} is not a suffix; write MODEL+d3, MODEL+d3:XC or "
            "MODEL+zbl (lowercase; they chain: sevennet-0+zbl+d3)"
        )
    return None
