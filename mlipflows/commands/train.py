"""`mlipflows train CONFIG.yaml` and `mlipflows model-errors MODEL DATA`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def train_command(
    config: Annotated[Path, typer.Argument(help="training YAML (see mlipflows.training.config)")],
    output: Annotated[Path | None, typer.Option(help="checkpoint path (overrides the config)")] = None,
    epochs: Annotated[int | None, typer.Option(help="override the number of epochs")] = None,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    force: Annotated[bool, typer.Option(help="write over a model mlipflows ships (its output path)")] = False,
) -> None:
    """Train one of our architectures; writes a weights-only checkpoint usable as a model spec."""
    from mlipflows.commands.ui import console, err_console
    from mlipflows.errors import MlipflowsError
    from mlipflows.training import TrainConfig, train

    try:
        cfg = TrainConfig.from_yaml(config)
        updates = {k: v for k, v in {"output": output, "epochs": epochs}.items() if v is not None}
        cfg = cfg.with_updates(**updates) if updates else cfg
        cfg.check_output(force)
        if Path(cfg.output).is_file():
            err_console.print(f"{cfg.output} exists: it is replaced when training ends")
        result = train(cfg, show_progress=not quiet, console=err_console)
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(f"wrote {result.checkpoint} (best epoch {result.best_epoch}, stopped: {result.stopped})")
    v = result.validation.get("all")
    if v:
        e_mae, f_mae = v["energy_mae_mev_atom"], v["force_mae_ev_a"]
        console.print(f"  validation: E MAE {e_mae:.2f} meV/atom, F MAE {f_mae:.3f} eV/Å")


def model_errors(
    model: Annotated[str, typer.Argument(help="checkpoint path or registry name of one of our models")],
    data: Annotated[Path, typer.Argument(help="labelled structures: mlearn JSON(.gz) or extxyz")],
    head: Annotated[str | None, typer.Option(help="readout head (default: the model's first)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Energy (meV/atom), force (eV/Å) and stress (GPa) errors of our model on labelled data."""
    from mlipflows.commands.ui import console, err_console
    from mlipflows.errors import MlipflowsError
    from mlipflows.models.potential import ModelPotential
    from mlipflows.potentials import load_potential
    from mlipflows.training.data import read_dataset
    from mlipflows.training.metrics import errors

    try:
        pot = load_potential(model)
        if not isinstance(pot, ModelPotential):
            raise typer.BadParameter(f"{model} is not one of our architectures (mlipflows checkpoint)")
        target_head = pot.model.readout.heads[pot.model.readout.head_index(head)]
        samples = read_dataset(data, head=target_head)
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except KeyError as exc:  # --head: the message names the model's heads
        err_console.print(f"[red]error[/red] --head: {exc.args[0]}")
        raise typer.Exit(2) from None
    table = errors(pot.model, samples)
    if as_json:
        typer.echo(json.dumps(table, indent=2))
        return
    for tag, row in table.items():
        console.print(
            f"{tag:<10} n={row['n']:<4} E MAE {row['energy_mae_mev_atom']:7.2f} meV/atom   "
            f"F MAE {row['force_mae_ev_a']:.3f} eV/Å   σ MAE {row['stress_mae_gpa']:.3f} GPa"
        )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("model-errors")(model_errors)
