"""Training loop: AdamW + warmup/cosine schedule, EMA weights, early stopping on validation.

Losses (per structure weight w_s from its data set, averaged over labelled items):
  L = λ_E ⟨w (ΔE/n)²⟩ + λ_F ⟨w |ΔF|²/3⟩ + λ_σ ⟨w |Δσ|²/9⟩
in (eV/atom)², (eV/Å)², (eV/Å³)². Validation uses the EMA weights; the best EMA weights are
what the checkpoint holds.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from mlipflows.models.base import EnergyModel, build_model
from mlipflows.models.checkpoint import save_checkpoint
from mlipflows.models.potential import predict
from mlipflows.potentials.base import resolve_device
from mlipflows.training.baseline import fit_baseline, mean_coordination
from mlipflows.training.config import TrainConfig
from mlipflows.training.data import Sample, Targets, collate, read_dataset, read_spec
from mlipflows.training.metrics import errors


@dataclass
class TrainResult:
    """What a run produced: checkpoint path, per-epoch history, best validation metrics."""

    checkpoint: Path
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    e0: dict[str, dict[str, float]] = field(default_factory=dict)
    stopped: str = "epochs"


def load_splits(
    config: TrainConfig, keep: Callable[[Sample], bool] | None = None
) -> tuple[list[Sample], list[Sample]]:
    """Training and validation samples of every data set (seeded random split), only those
    ``keep`` accepts when it is given."""
    rng = np.random.default_rng(config.seed)
    train, val = [], []
    for spec in config.datasets:
        samples = [s for s in read_spec(spec) if keep is None or keep(s)]
        if spec.validation_path is not None:
            train += samples
            val += read_dataset(spec.validation_path, spec.format, spec.head, spec.weight)
            continue
        order = rng.permutation(len(samples))
        n_val = round(spec.validation_fraction * len(samples))
        if spec.validation_fraction > 0:
            n_val = max(n_val, 1)
        val += [samples[k] for k in order[:n_val]]
        train += [samples[k] for k in order[n_val:]]
    return train, val


def build_for_data(config: TrainConfig, train: Sequence[Sample]) -> EnergyModel:
    """The architecture with elements, heads and mean coordination taken from the data."""
    options = dict(config.model)
    elements = sorted({sym for s in train for sym in s.atoms.get_chemical_symbols()})
    options.setdefault("elements", elements)
    options["heads"] = config.heads
    probe = build_model(config.architecture, options)
    options.setdefault("avg_neighbors", mean_coordination(train, probe.cutoff))
    model = build_model(config.architecture, options)
    model.readout.mean_coordination.fill_(float(options["avg_neighbors"]))
    return model


def calibrate(model: EnergyModel, train: Sequence[Sample], seed: int, n: int = 16) -> None:
    """Let the model set its data-derived normalisations on up to ``n`` training structures."""
    from mlipflows.models.geometry import build_graph

    pick = np.random.default_rng(seed).permutation(len(train))[:n]
    batch, t = collate([train[k] for k in pick], model.readout.heads, dtype=torch.float64)
    graph, _ = build_graph(batch, model.cutoff, t.charge, t.head)
    model.double().calibrate(graph)
    model.float()


def loss_terms(pred: Any, t: Targets, config: TrainConfig) -> dict[str, torch.Tensor]:
    w = t.weight
    e = (w * ((pred.energy - t.energy) / t.n_atoms) ** 2).sum() / w.sum()
    wf = torch.repeat_interleave(w, t.n_atoms.long()) * t.force_mask
    f = (wf * ((pred.forces - t.forces) ** 2).mean(1)).sum() / wf.sum().clamp_min(1e-12)
    terms = {"energy": e, "forces": f}
    if config.loss.stress > 0 and pred.stress is not None:
        ws = w * t.stress_mask
        s = (ws * ((pred.stress - t.stress) ** 2).mean((1, 2))).sum() / ws.sum().clamp_min(1e-12)
        terms["stress"] = s
    terms["total"] = sum(getattr(config.loss, k) * v for k, v in terms.items())
    return terms


def _schedule(config: TrainConfig, total_steps: int) -> Any:
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / (config.warmup_steps + 1)
        if config.schedule == "constant":
            return 1.0
        x = min((step - config.warmup_steps) / max(total_steps - config.warmup_steps, 1), 1.0)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * x))

    return factor


def train(
    config: TrainConfig,
    show_progress: bool = True,
    console: Console | None = None,
    model: EnergyModel | None = None,
    splits: tuple[list[Sample], list[Sample]] | None = None,
) -> TrainResult:
    """Run the whole training; writes the best EMA model to ``config.output``.

    ``model`` and ``splits`` (train, validation) let fine-tuning start from a prepared model
    (baseline already set) and its own samples instead of building both from ``config``.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    dtype = getattr(torch, config.dtype)
    device = resolve_device(config.device)  # "auto" too; a CUDA-less machine fails here, clearly
    train_set, val_set = splits if splits is not None else load_splits(config)
    if not train_set:
        raise ValueError("no training structures: check the dataset paths and limits")
    e0: dict[str, dict[str, float]] = {}
    if model is None:
        model = build_for_data(config, train_set)
        e0 = fit_baseline(model, train_set, config.e0, config.fit_shift)
        calibrate(model, train_set, config.seed)
    model = model.to(device=device, dtype=dtype)
    heads = model.readout.heads
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / config.batch_size)
    total = min(config.epochs * steps_per_epoch, config.max_steps or 10**12)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(config, total))
    ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    result = TrainResult(checkpoint=Path(config.output), e0=e0)
    best, best_state, bad_epochs, step = math.inf, None, 0, 0
    rng = np.random.default_rng(config.seed)
    need_stress = config.loss.stress > 0
    t0 = time.perf_counter()
    columns = (
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[losses]}"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
    )
    console = console or Console(stderr=True)
    with Progress(*columns, console=console, disable=not show_progress) as bar:
        task = bar.add_task("train", total=total, losses="")
        for epoch in range(config.epochs):
            model.train()
            running: dict[str, float] = {}
            order = rng.permutation(len(train_set))
            for start in range(0, len(order), config.batch_size):
                chunk = [train_set[k] for k in order[start : start + config.batch_size]]
                batch, t = collate(chunk, heads, dtype=dtype, device=device)
                pred = predict(model, batch, need_stress, t.charge, t.head, create_graph=True)
                terms = loss_terms(pred, t, config)
                optimizer.zero_grad(set_to_none=True)
                terms["total"].backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                ema.update_parameters(model)
                step += 1
                for k, v in terms.items():
                    running[k] = running.get(k, 0.0) + float(v.detach())
                n = (start // config.batch_size) + 1
                text = " ".join(
                    f"{k[0].upper()} {running[k] / n:.2e}"
                    for k in ("energy", "forces", "stress")
                    if k in running
                )
                bar.update(task, advance=1, losses=f"ep {epoch + 1} {text}")
                if step >= total:
                    break
            record = {"epoch": epoch + 1, "step": step, "lr": scheduler.get_last_lr()[0]}
            record.update({f"train_{k}": v / max(n, 1) for k, v in running.items()})
            ema_model: EnergyModel = ema.module
            if val_set:
                val = errors(ema_model, val_set, config.batch_size, dtype)["all"]
                score = (
                    config.loss.energy * (val["energy_rmse_mev_atom"] / 1000) ** 2
                    + config.loss.forces * val["force_rmse_ev_a"] ** 2
                )
                record.update({f"val_{k}": v for k, v in val.items() if k != "n"})
            else:
                score = record.get("train_total", 0.0)
            record["val_score"] = score
            result.history.append(record)
            if show_progress and val_set:
                e_mae, f_mae = record["val_energy_mae_mev_atom"], record["val_force_mae_ev_a"]
                bar.console.print(f"epoch {epoch + 1}: val E {e_mae:.2f} meV/atom  F {f_mae:.3f} eV/Å")
            if score < best:
                best, best_state, bad_epochs = score, copy.deepcopy(ema_model.state_dict()), 0
                result.best_epoch = epoch + 1
            else:
                bad_epochs += 1
            if step >= total:
                result.stopped = "max_steps" if config.max_steps else "epochs"
                break
            if bad_epochs >= config.patience:
                result.stopped = "early_stopping"
                break
            if config.max_time_s and time.perf_counter() - t0 > config.max_time_s:
                result.stopped = "max_time"
                break
    final = ema.module
    if best_state is not None:
        final.load_state_dict(best_state)
    final = final.to(torch.float32 if dtype == torch.float32 else dtype).cpu().eval()
    if val_set:
        result.validation = errors(final, val_set, config.batch_size, dtype)
    metadata = {
        "name": config.name or Path(config.output).stem,
        "version": "1",
        "trained_on": [
            str(d.path) if d.path else f"store: {d.store.model_dump(exclude_none=True)}"
            for d in config.datasets
        ],
        "n_train": len(train_set),
        "n_validation": len(val_set),
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "validation": result.validation.get("all", {}),
        "e0": e0,
        "train_seconds": time.perf_counter() - t0,
    }
    save_checkpoint(final, config.output, metadata=metadata, training=config.model_dump(mode="json"))
    # the per-epoch curve next to the checkpoint (the checkpoint keeps the best epoch only)
    history = Path(config.output).with_name(f"{Path(config.output).stem}-history.json")
    history.write_text(json.dumps({"metadata": metadata, "history": result.history}, indent=1, default=str))
    return result
