"""`mlipflows distill`: build or refresh a fast student of ours from a teacher's stored results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from mlipflows.commands.ui import UriOption
from mlipflows.home import reference_data


def distill_command(
    out: Annotated[Path, typer.Option(help="student checkpoint to write (e.g. my-student.pt)")],
    teacher: Annotated[
        str, typer.Option(help="the model whose stored results are the labels")
    ] = "sevennet-0",
    campaign: Annotated[
        str | None,
        typer.Option(help="train on this campaign's stored teacher results (default: the base pool)"),
    ] = None,
    chemsys: Annotated[
        str | None, typer.Option(help="only results of this chemical system, e.g. Ga-N")
    ] = None,
    label: Annotated[
        bool, typer.Option("--label", help="first label the base pool with the teacher (resumable)")
    ] = False,
    data: Annotated[
        Path, typer.Option(help="folder holding matcalc-benchmarks/ and mp-elastic-tensors/ (--label)")
    ] = Path("../shared/data"),
    elements: Annotated[
        str | None,
        typer.Option(help="--label: only these elements, comma-separated (default: the teacher's)"),
    ] = None,
    binaries: Annotated[int, typer.Option(help="--label: random binary prototype decorations")] = 800,
    refresh: Annotated[
        Path | None,
        typer.Option("--from", help="refresh this student: fine-tune it, with replay, instead of a new one"),
    ] = None,
    architecture: Annotated[str, typer.Option(help="mpnice, geodite or nequip-lr")] = "mpnice",
    channels: Annotated[int, typer.Option(help="feature channels")] = 48,
    blocks: Annotated[int, typer.Option(help="message-passing blocks")] = 2,
    max_time: Annotated[float, typer.Option(help="training time box, s")] = 1800.0,
    epochs: Annotated[int, typer.Option()] = 200,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 1,
    quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
    uri: UriOption = None,
) -> None:
    """Distil a teacher into one of our architectures from its results in the store.

    The base pool (``--label``: WBM and MP elastic structures, prototype decorations over the
    teacher's elements, rattled/strained copies and relaxation frames, all labelled by the
    teacher with our engine) or any campaign's stored results. The student's isolated-atom
    energies are the teacher's. A base-pool student is written with its replay pool and
    held-out set next to it (``<stem>-replay.extxyz.gz``, ``<stem>-heldout.extxyz.gz``), which
    surrogate campaigns fine-tune from; its held-out errors go into the checkpoint.
    """
    from mlipflows.commands.ui import console, err_console
    from mlipflows.errors import MlipflowsError
    from mlipflows.store import get_job_store, store_errors

    try:
        store = get_job_store(uri)
        if label:
            from mlipflows.training.distill import label_pool

            with store_errors(store, "labelling the base pool"):
                chosen = [e.strip() for e in elements.split(",")] if elements else None
                counts = label_pool(
                    teacher, reference_data(data), store, n_binaries=binaries, elements=chosen
                )
            err_console.print(
                f"labelled {counts['labelled']} structures ({counts['already_stored']} were stored)"
            )
        summary = _train(
            out,
            teacher,
            campaign,
            chemsys,
            refresh,
            architecture,
            channels,
            blocks,
            max_time,
            epochs,
            threads,
            quiet,
        )
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(json.dumps(summary, indent=2))


def _train(
    out: Path,
    teacher: str,
    campaign: str | None,
    chemsys: str | None,
    refresh: Path | None,
    architecture: str,
    channels: int,
    blocks: int,
    max_time: float,
    epochs: int,
    threads: int,
    quiet: bool,
) -> dict[str, Any]:
    from mlipflows.training import DatasetSpec, TrainConfig, train
    from mlipflows.training.distill import (
        TEST_TAG,
        TRAIN_TAG,
        campaign_name,
        export_pool,
        fixed_e0,
        plausible,
    )
    from mlipflows.training.replay import FineTuneConfig, fine_tune
    from mlipflows.training.store_data import StoreQuery
    from mlipflows.training.trainer import load_splits

    base = campaign is None
    head = teacher
    query = StoreQuery(
        campaign=campaign or campaign_name(teacher),
        model=teacher,
        chemsys=chemsys,
        tag=TRAIN_TAG if base else None,
    )
    loss = {"energy": 100.0, "forces": 1.0, "stress": 1000.0}
    if refresh is not None:
        from mlipflows.campaign.surrogate_jobs import student_files

        _, replay, _ = student_files(str(refresh))
        config = FineTuneConfig(
            name=out.stem,
            checkpoint=refresh,
            new_head=f"{teacher}-refresh",
            datasets=[DatasetSpec(store=query, head=f"{teacher}-refresh", validation_fraction=0.1)],
            replay_data=[DatasetSpec(path=replay)] if replay else [],
            replay_size=1000 if replay else 0,
            replay_selection="mace",
            replay_validation_fraction=0.1,
            loss=loss,
            epochs=epochs,
            max_time_s=max_time,
            batch_size=8,
            threads=threads,
            output=out.with_name(f"{out.stem}-heads.pt"),
            single_head_output=out,
        )
        result = fine_tune(config, show_progress=not quiet).train
    else:
        e0 = fixed_e0(teacher, head)
        config = TrainConfig(
            name=out.stem,
            architecture=architecture,
            model={"n_channels": channels, "n_blocks": blocks, "cutoff": 5.0, "electrostatics": False},
            datasets=[DatasetSpec(store=query, head=head, validation_fraction=0.05)],
            e0=e0,
            fit_shift="element",
            loss=loss,
            epochs=epochs,
            max_time_s=max_time,
            batch_size=16,
            lr=2e-3,
            patience=15,
            threads=threads,
            output=out,
        )
        splits = load_splits(config, keep=lambda s: plausible(s, e0[head])) if base else None
        result = train(config, show_progress=not quiet, splits=splits)
    summary: dict[str, Any] = {
        "checkpoint": str(out),
        "best_epoch": result.best_epoch,
        "stopped": result.stopped,
        "validation": result.validation.get("all", {}),
    }
    if base and refresh is None:
        summary["heldout"] = export_pool(teacher, out, head, TEST_TAG)
    return summary


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("distill")(distill_command)
