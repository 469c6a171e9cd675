"""`mlipflows results`: query, filter, join and export stored results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlipflows.commands.ui import UriOption, err_console, print_results


def results(
    tag: Annotated[str | None, typer.Option(help="only results with this tag")] = None,
    campaign: Annotated[str | None, typer.Option(help="only this campaign")] = None,
    model: Annotated[str | None, typer.Option(help="only this model name")] = None,
    state: Annotated[str | None, typer.Option(help="successful or failed")] = None,
    task: Annotated[str | None, typer.Option(help="relax, static, stability, phonon, ...")] = None,
    chemsys: Annotated[
        list[str] | None, typer.Option(help="chemical system, e.g. Ba-O-Ti (repeatable)")
    ] = None,
    element: Annotated[list[str] | None, typer.Option(help="must contain this element (repeatable)")] = None,
    where: Annotated[str | None, typer.Option(help='filter, e.g. "e_above_hull < 0.05"')] = None,
    sort: Annotated[str | None, typer.Option(help="sort by this field, e.g. energy_per_atom")] = None,
    limit: Annotated[int, typer.Option(help="at most this many rows (0 = all)")] = 0,
    join: Annotated[bool, typer.Option(help="one row per structure, columns per task type")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    export: Annotated[Path | None, typer.Option(help="also write all columns to .csv/.json/.parquet")] = None,
    uri: UriOption = None,
) -> None:
    """Print stored results (filter with --where, e.g. "e_above_hull < 0.05"); --export writes them."""
    from mlipflows.errors import MlipflowsError
    from mlipflows.results import (
        WhereError,
        build_criteria,
        export_frame,
        join_tasks,
        parse_where,
        query_results,
    )
    from mlipflows.store import get_job_store

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    if export is not None and export.suffix.lower() not in (".csv", ".json", ".parquet", ".pq"):
        raise typer.BadParameter("--export PATH must end in .csv, .json or .parquet")
    try:
        extra = parse_where(where) if where else None
    except WhereError as exc:
        raise typer.BadParameter(str(exc), param_hint="--where") from None
    criteria = build_criteria(tag, campaign, model, task, state, extra, chemsys, element)
    try:
        # structures (~1 kB each) only where they are shown: JSON output and exports
        exclude = ("structure",) if join or (fmt != "json" and export is None) else ()
        frame = query_results(get_job_store(uri), criteria, sort=sort, limit=limit, exclude=exclude)
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    if frame.empty:
        err_console.print("no results match")
        raise typer.Exit(0)
    if join:
        frame = join_tasks(frame)
    if export is not None:
        export_frame(frame, export)
        err_console.print(f"wrote {len(frame)} rows to {export}")
    print_results(frame, fmt)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(results)
