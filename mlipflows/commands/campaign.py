"""`mlipflows campaign run`, `mlipflows hull`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from jobflow import Flow

campaign_app = typer.Typer(help="Stability campaigns over many compositions.", no_args_is_help=True)

UriOption = Annotated[str | None, typer.Option(help="MongoDB URI (default: configuration / embedded)")]


@campaign_app.command("run")
def run(
    spec: Annotated[Path, typer.Argument(help="campaign YAML (see workflows/)")],
    uri: UriOption = None,
    retry_failed: Annotated[bool, typer.Option(help="relax again candidates stored as failed")] = False,
    strict: Annotated[
        bool, typer.Option(help="stop at the first unreadable structure file instead of recording it")
    ] = False,
) -> None:
    """Generate candidates, relax them in chunks, build the hull. Re-running resumes."""
    from mlipflows.campaign import SpecError, load_spec
    from mlipflows.campaign.run import plan_campaign
    from mlipflows.cli import console, err_console, print_results, run_with_progress
    from mlipflows.errors import MlipflowsError
    from mlipflows.results import query_results
    from mlipflows.store import describe_store, ensure_indexes, get_job_store, store_errors

    try:
        campaign = load_spec(spec)
        store = get_job_store(uri)
        with err_console.status("generating candidates"), store_errors(store, "reading stored results"):
            ensure_indexes(store)  # MongoDB only: the fields users query
            plan = plan_campaign(campaign, store, retry_failed, strict)
    except (SpecError, MlipflowsError) as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    err_console.print(
        f"campaign [bold]{campaign.name}[/bold]: {len(plan.candidates)} candidates, "
        f"{plan.n_to_relax} structures to relax ({plan.n_skipped} already stored) "
        f"with {campaign.model} → {describe_store(store)}"
    )
    if plan.unreadable:
        err_console.print(
            f"[yellow]warning[/yellow] {len(plan.unreadable)} unreadable structure files, stored as "
            "failed candidates with the reader's message (--strict stops instead):"
        )
        for reason in list(plan.unreadable.values())[:10]:
            err_console.print(f"  {reason}")
        if len(plan.unreadable) > 10:
            err_console.print(f"  … {len(plan.unreadable) - 10} more (mlipflows results --state failed)")
    for sid, reason in list(plan.unsupported.items())[:10]:
        err_console.print(f"[yellow]warning[/yellow] {sid}: {reason} (it will be stored as failed)")
    if len(plan.unsupported) > 10:
        err_console.print(f"[yellow]warning[/yellow] … {len(plan.unsupported) - 10} more unsupported")
    first = plan.flow.jobs[0]
    n_chunks = sum(len(sub.jobs) for sub in first.jobs) if isinstance(first, Flow) else 0
    try:
        with store_errors(store, "running the campaign"):
            run_with_progress(plan.flow, plan.n_to_relax, store, n_chunks, raise_immediately=True)
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}\nrun the same command again to resume")
        raise typer.Exit(2) from None
    frame = query_results(store, {"campaign": campaign.name, "task_type": "stability"}, sort="e_above_hull")
    ok = frame[frame["state"] == "successful"] if len(frame) else frame
    n_stable = int(ok["is_stable"].sum()) if len(ok) else 0
    console.print(f"{len(frame)} stability results, {len(frame) - len(ok)} failed, {n_stable} on the hull")
    if len(ok):
        print_results(ok.head(15), title=f"{campaign.name}: lowest e_above_hull")


def hull(
    campaign: Annotated[str, typer.Argument(help="campaign name")],
    chemsys: Annotated[str | None, typer.Option(help="only this chemical system, e.g. Ba-O-Ti")] = None,
    plot: Annotated[Path | None, typer.Option(help="write a phase-diagram plot (PNG) of --chemsys")] = None,
    limit: Annotated[int, typer.Option(help="rows to print (0 = all)")] = 25,
    uri: UriOption = None,
) -> None:
    """Print a campaign's hull results; optionally plot one chemical system's phase diagram."""
    from mlipflows.cli import err_console, print_results
    from mlipflows.results import query_results
    from mlipflows.store import get_job_store

    store = get_job_store(uri)
    crit: dict = {"campaign": campaign, "task_type": "stability"}
    if chemsys:
        chemsys = "-".join(sorted(chemsys.split("-")))
        crit["chemsys"] = chemsys
    frame = query_results(store, crit, sort="e_above_hull")
    if frame.empty:
        err_console.print(
            f"no stability results for campaign {campaign!r}" + (f" in {chemsys}" if chemsys else "")
        )
        raise typer.Exit(1)
    print_results(frame.head(limit) if limit else frame, title=f"{campaign} hull")
    if plot is not None:
        systems = sorted(set(frame["chemsys"]))
        target = chemsys or (systems[0] if len(systems) == 1 else None)
        if target is None:
            err_console.print(f"[red]error[/red] --plot needs --chemsys (one of {', '.join(systems[:12])}…)")
            raise typer.Exit(2)
        from mlipflows.plots import plot_phase_diagram

        plot_phase_diagram(store, campaign, target, plot)
        err_console.print(f"wrote {plot}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.command()(hull)
