"""`mlipflows report CAMPAIGN --out DIR`: a static HTML page of a campaign's results."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlipflows.commands.ui import UriOption, output_folder


def report(
    campaign: Annotated[str, typer.Argument(help="campaign name")],
    out: Annotated[
        Path, typer.Option(help="folder for index.html and its figures", callback=output_folder)
    ] = Path("report"),
    top: Annotated[int, typer.Option(help="rows in the tables of most stable candidates", min=1)] = 50,
    uri: UriOption = None,
) -> None:
    """Write DIR/index.html: counts, failures, hull plots, e_above_hull histogram, sortable tables."""
    from mlipflows.campaign.status import list_campaigns
    from mlipflows.commands.campaign import unknown_campaign
    from mlipflows.commands.ui import err_console, progress_bars
    from mlipflows.errors import MlipflowsError
    from mlipflows.report import build_report
    from mlipflows.store import connect_store, get_job_store

    try:
        store = connect_store(get_job_store(uri))
        if campaign not in {c["campaign"] for c in list_campaigns(store)}:  # exit 2, nearest names
            err_console.print(f"[red]error[/red] {unknown_campaign(store, campaign)}")
            raise typer.Exit(2)
        with progress_bars():
            page = build_report(store, campaign, out, top=top)
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    typer.echo(f"wrote {page}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(report)
