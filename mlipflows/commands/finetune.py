"""`mlipflows finetune CONFIG.yaml`: multi-head replay fine-tuning of one of our checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def finetune_command(
    config: Annotated[Path, typer.Argument(help="fine-tuning YAML (see mlipflows.training.replay)")],
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    force: Annotated[bool, typer.Option(help="write over a model mlipflows ships (its output path)")] = False,
) -> None:
    """Add a readout head for new data to a trained checkpoint and train it with replay."""
    from mlipflows.commands.ui import console, err_console
    from mlipflows.errors import MlipflowsError
    from mlipflows.training.replay import FineTuneConfig, fine_tune

    try:
        cfg = FineTuneConfig.from_yaml(config)
        cfg.check_output(force)
        result = fine_tune(cfg, show_progress=not quiet)
    except (MlipflowsError, ValueError) as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except KeyError as exc:  # an unknown head (the message names the model's heads)
        err_console.print(f"[red]error[/red] {config}: {exc.args[0]}")
        raise typer.Exit(2) from None
    train = result.train
    console.print(
        f"wrote {train.checkpoint} (heads +{cfg.new_head!r}, {len(result.replay)} replay structures, "
        f"best epoch {train.best_epoch}, stopped: {train.stopped})"
    )
    if result.single_head:
        console.print(f"wrote {result.single_head} (head {cfg.new_head!r} alone)")
    # a multi-head file evaluates its first head unless told: say how to use the new one
    use = result.single_head or f"{train.checkpoint}@{cfg.new_head}"
    console.print(f"use the new head with --model {use}")
    v = train.validation.get("all")
    if v:
        console.print(
            f"  validation (new data): E MAE {v['energy_mae_mev_atom']:.2f} meV/atom, "
            f"F MAE {v['force_mae_ev_a']:.3f} eV/Å"
        )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("finetune")(finetune_command)
