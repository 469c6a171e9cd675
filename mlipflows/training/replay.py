"""Multi-head replay fine-tuning (after MACE multi-head fine-tuning, Batatia et al. 2024).

Start from one of our trained checkpoints, add a readout head for a new data set / level of
theory, and train the shared trunk and all heads on the new data *plus* a replay set drawn from
the original training data and labelled with the original head. The replay set keeps the trunk
from forgetting what the old head needs (catastrophic forgetting without it).

* :func:`add_head` grows the multi-head readout: the new head starts as a copy of the source
  head's last layer and scale; its E0(Z) and shift are refitted by least squares on the new data.
* :func:`select_replay` filters the original data by elements (``subset``: every element of the
  structure occurs in the new data; ``overlap``: at least one does; ``none``) and picks
  ``replay_size`` structures at random or by farthest-point sampling on pooled descriptors
  (the mean over atoms of the features the readout sees, from the starting model).
* :func:`fine_tune` runs the standard trainer (:func:`mlipflows.training.trainer.train`) on
  new + replay samples (replay samples weighted by ``replay_weight``); validation and early
  stopping use the new data's validation split.
* :func:`extract_head` returns a single-head model (the trunk plus one head) for deployment.

``mlipflows finetune CONFIG.yaml`` reads a :class:`FineTuneConfig`, e.g.::

    checkpoint: mlipflows/data/models/geodite-si-mlearn.pt
    new_head: pyxtal
    datasets: [{path: si8-train.extxyz, head: pyxtal, validation_fraction: 0.1}]
    replay_data: [{path: ../shared/data/mlearn/Si_training.json.gz}]
    replay_size: 40
    replay_selection: fps
    replay_weight: 1.0
    epochs: 8
    lr: 0.001
    output: geodite-si-pyxtal.pt
    single_head_output: geodite-pyxtal-only.pt
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, field_validator
from pymatgen.core import Element

from mlipflows.engine.batch import Batch, segment_sum
from mlipflows.models.base import EnergyModel, build_model
from mlipflows.models.checkpoint import load_model, save_checkpoint
from mlipflows.models.geometry import build_graph
from mlipflows.training.baseline import fit_baseline
from mlipflows.training.config import DatasetSpec, TrainConfig
from mlipflows.training.data import Sample, read_spec
from mlipflows.training.trainer import TrainResult, load_splits, train


class FineTuneConfig(TrainConfig):
    """A :class:`TrainConfig` whose ``datasets`` are the *new* data (all with head ``new_head``)
    plus where to start from and how to replay the original data."""

    checkpoint: Path = Field(
        description="trained mlipflows checkpoint (or a packaged model's name) to start from"
    )

    @field_validator("checkpoint")
    @classmethod
    def _existing(cls, value: Path) -> Path:
        from mlipflows.models.checkpoint import PACKAGED

        if value.is_file():
            return value
        if (PACKAGED / f"{value}.pt").is_file():  # a packaged model's registry name
            return PACKAGED / f"{value}.pt"
        raise ValueError(f"{value}: no such checkpoint file (nor a packaged model's name)")

    new_head: str = "finetune"
    source_head: str | None = Field(None, description="head to copy and replay (default: the first)")
    replay_data: list[DatasetSpec] = Field(default_factory=list, description="original training data")
    replay_size: int = Field(100, ge=0)
    replay_selection: Literal["random", "fps", "mace"] = "fps"
    replay_weight: float = Field(1.0, ge=0.0, description="loss weight of each replay structure")
    replay_validation_fraction: float = Field(
        0.0, ge=0.0, lt=1.0, description="replay held out: early stopping sees old and new data"
    )
    element_filter: Literal["subset", "overlap", "none"] = "subset"
    refit_baseline: bool = Field(
        True,
        description="refit the new head's E0 and scale on the new data; off when the new data are the "
        "source head's level of theory (a student fine-tuned on its own teacher's labels)",
    )
    single_head_output: Path | None = Field(None, description="also write the new head alone here")


def _resized(old: torch.Tensor, n_new: int, source: int) -> torch.Tensor:
    """Rows of ``old`` (first axis = heads) extended by copies of row ``source``."""
    extra = old[source : source + 1].expand(n_new - old.shape[0], *old.shape[1:])
    return torch.cat([old, extra], dim=0)


def _with_heads(
    model: EnergyModel, heads: list[str], rows: list[int], elements: list[str] | None = None
) -> EnergyModel:
    """A copy of ``model`` whose readout heads are ``heads``, head k taking old row ``rows[k]``
    (and, optionally, a longer element list: the embedding tables already cover every Z)."""
    config = dict(model.get_config(), heads=list(heads), elements=list(elements or model.elements))
    new = build_model(model.architecture, config).to(next(model.parameters()).dtype)
    state = model.state_dict()
    target = new.state_dict()
    index = torch.tensor(rows)
    n_old = len(model.heads)
    for key, value in state.items():
        if key.startswith("readout.") and value.shape != target[key].shape and value.shape[0] == n_old:
            state[key] = value[index].clone()
    new.load_state_dict(state)
    return new


def add_head(model: EnergyModel, new_head: str, source_head: str | None = None) -> EnergyModel:
    """``model`` with one more readout head, initialised as a copy of ``source_head``."""
    if new_head in model.heads:
        raise ValueError(f"model already has a head {new_head!r}: {model.heads}")
    source = model.readout.head_index(source_head)
    rows = [*range(len(model.heads)), source]
    return _with_heads(model, [*model.heads, new_head], rows)


def extract_head(model: EnergyModel, head: str) -> EnergyModel:
    """The trunk plus the single readout head ``head`` (predictions identical for that head)."""
    return _with_heads(model, [head], [model.readout.head_index(head)])


def _readout_inputs(
    model: EnergyModel, samples: Sequence[Sample], batch_size: int
) -> Iterator[tuple[Batch, torch.Tensor]]:
    """Per chunk of ``samples``: the batch and the per-atom features fed to the readout."""
    captured: list[torch.Tensor] = []
    hook = model.readout.register_forward_hook(lambda _m, args, _o: captured.append(args[0].detach()))
    dtype = next(model.parameters()).dtype
    try:
        for start in range(0, len(samples), batch_size):
            batch = Batch.from_atoms([s.atoms for s in samples[start : start + batch_size]], dtype=dtype)
            with torch.enable_grad():  # the graph builder makes differentiable positions
                graph, _ = build_graph(batch, model.cutoff)
                captured.clear()
                model(graph)
            yield batch, captured[-1]
    finally:
        hook.remove()


@torch.no_grad()
def pooled_descriptors(model: EnergyModel, samples: Sequence[Sample], batch_size: int = 8) -> np.ndarray:
    """(S, F) mean over atoms of the features fed to the readout (any of our architectures)."""
    rows = []
    for batch, features in _readout_inputs(model, samples, batch_size):
        n = int(batch.n_atoms.numel())
        counts = torch.bincount(batch.system_idx, minlength=n).to(features.dtype)
        rows.append(segment_sum(features, batch.system_idx, n) / counts[:, None])
    return torch.cat(rows).double().numpy()


@torch.no_grad()
def per_element_descriptors(
    model: EnergyModel, samples: Sequence[Sample], element: str, batch_size: int = 8
) -> np.ndarray:
    """(S, F) mean of the readout's features over the atoms of ``element`` in each sample
    (samples without that element get zeros: callers pass only samples that have it)."""
    z = Element(element).Z
    rows = []
    for batch, features in _readout_inputs(model, samples, batch_size):
        n = int(batch.n_atoms.numel())
        mask = (batch.atomic_numbers == z).to(features.dtype)
        total = segment_sum(features * mask[:, None], batch.system_idx, n)
        rows.append(total / segment_sum(mask, batch.system_idx, n).clamp(min=1.0)[:, None])
    return torch.cat(rows).double().numpy()


def farthest_point_sampling(x: np.ndarray, k: int, seed: int = 0) -> list[int]:
    """Indices of ``k`` rows of ``x`` chosen greedily to maximise the minimum Euclidean distance
    to those already chosen (first pick random), after scaling each column to unit variance."""
    n = len(x)
    if k >= n:
        return list(range(n))
    z = (x - x.mean(0)) / np.where(x.std(0) > 0, x.std(0), 1.0)
    chosen = [int(np.random.default_rng(seed).integers(n))]
    dist = np.linalg.norm(z - z[chosen[0]], axis=1)
    while len(chosen) < k:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, np.linalg.norm(z - z[nxt], axis=1))
    return chosen


def element_filter(
    samples: Sequence[Sample], elements: set[str], mode: Literal["subset", "overlap", "none"]
) -> list[Sample]:
    """Replay candidates whose elements are a subset of / overlap with ``elements``."""
    if mode == "none":
        return list(samples)
    out = []
    for s in samples:
        own = set(s.atoms.get_chemical_symbols())
        if (mode == "subset" and own <= elements) or (mode == "overlap" and own & elements):
            out.append(s)
    return out


def select_replay_mace(
    model: EnergyModel, pool: Sequence[Sample], new_elements: set[str], size: int, seed: int = 0
) -> list[Sample]:
    """Replay selected the way MACE's multi-head fine-tuning does: the element filter first
    (every structure made only of the new data's elements; FPS among them if there are more
    than ``size``), then the rest filled from the *whole* pool by farthest-point sampling on
    per-element descriptors, an equal share per new element among the structures holding it
    (and from the whole pool on pooled descriptors once those run out)."""
    if size <= 0 or not pool:
        return []
    inside = [k for k, s in enumerate(pool) if set(s.atoms.get_chemical_symbols()) <= new_elements]
    if len(inside) > size:
        x = pooled_descriptors(model, [pool[k] for k in inside])
        return [pool[inside[int(i)]] for i in farthest_point_sampling(x, size, seed)]
    chosen = list(inside)
    taken = set(chosen)
    elements = sorted(new_elements)
    for n, el in enumerate(elements):
        share = (size - len(chosen)) // (len(elements) - n)
        holders = [k for k, s in enumerate(pool) if k not in taken and el in s.atoms.get_chemical_symbols()]
        if share <= 0 or not holders:
            continue
        x = per_element_descriptors(model, [pool[k] for k in holders], el)
        for i in farthest_point_sampling(x, share, seed):
            chosen.append(holders[int(i)])
            taken.add(holders[int(i)])
    rest = [k for k in range(len(pool)) if k not in taken]
    if len(chosen) < size and rest:
        x = pooled_descriptors(model, [pool[k] for k in rest])
        chosen += [rest[int(i)] for i in farthest_point_sampling(x, size - len(chosen), seed)]
    return [pool[k] for k in chosen]


def select_replay(
    model: EnergyModel,
    pool: Sequence[Sample],
    new_elements: set[str],
    size: int,
    method: Literal["random", "fps", "mace"] = "fps",
    mode: Literal["subset", "overlap", "none"] = "subset",
    seed: int = 0,
) -> list[Sample]:
    """The replay set: element-filtered, then ``size`` structures by random or FPS selection
    (``mace``: :func:`select_replay_mace`, which ignores ``mode``)."""
    if method == "mace":
        return select_replay_mace(model, pool, new_elements, size, seed)
    candidates = element_filter(pool, new_elements, mode)
    if size <= 0 or not candidates:
        return []
    if method == "random":
        idx = np.random.default_rng(seed).permutation(len(candidates))[:size]
    else:
        idx = farthest_point_sampling(pooled_descriptors(model, candidates), size, seed)
    return [candidates[int(k)] for k in idx]


@dataclass
class FineTuneResult:
    """The trainer's result plus the replay set actually used."""

    train: TrainResult
    replay: list[Sample]
    single_head: Path | None
    replay_validation: list[Sample] = field(default_factory=list)


def fine_tune(config: FineTuneConfig, show_progress: bool = True) -> FineTuneResult:
    """Add ``config.new_head`` to the checkpoint's model and train it with replay (see module)."""
    base, _ = load_model(config.checkpoint)
    # the architecture is the checkpoint's (the stored training config should say so)
    config = config.model_copy(update={"architecture": base.architecture})
    source = base.heads[base.readout.head_index(config.source_head)]
    if any(d.head != config.new_head for d in config.datasets):
        raise ValueError(f"every fine-tuning dataset must use head {config.new_head!r}")
    new_train, new_val = load_splits(config)
    if not new_train:
        raise ValueError("no fine-tuning structures: check the dataset paths and limits")
    new_elements = {sym for s in new_train for sym in s.atoms.get_chemical_symbols()}
    if not new_elements <= set(base.elements):
        # the model's element list is what its potential card advertises to the engine
        elements = sorted(set(base.elements) | new_elements)
        base = _with_heads(base, base.heads, list(range(len(base.heads))), elements)
    pool = [s for spec in config.replay_data for s in read_spec(spec, head=source)]
    replay = select_replay(
        base,
        pool,
        new_elements,
        config.replay_size,
        config.replay_selection,
        config.element_filter,
        config.seed,
    )
    replay = [replace(s, head=source, weight=config.replay_weight) for s in replay]
    n_val = round(len(replay) * config.replay_validation_fraction)
    order = np.random.default_rng(config.seed).permutation(len(replay))
    replay_val = [replay[int(k)] for k in order[:n_val]]
    replay = [replay[int(k)] for k in order[n_val:]]
    model = add_head(base, config.new_head, source)
    if config.refit_baseline:  # new head only (the others see no data); fixed E0 when given
        fit_baseline(model, new_train, config.e0, config.fit_shift)
    result = train(config, show_progress, model=model, splits=(new_train + replay, new_val + replay_val))
    single = None
    if config.single_head_output is not None:
        final, content = load_model(result.checkpoint)
        single = save_checkpoint(
            extract_head(final, config.new_head),
            config.single_head_output,
            metadata=dict(content["metadata"], heads=[config.new_head]),
            training=content["training"],
        )
    return FineTuneResult(result, replay, single, replay_val)
