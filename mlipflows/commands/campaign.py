"""`mlipflows campaign run | status | list`, `mlipflows hull`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlipflows.commands.ui import UriOption

campaign_app = typer.Typer(
    help="Campaigns: stability over many compositions, then a funnel of stages.", no_args_is_help=True
)


@campaign_app.command("run")
def run(
    spec: Annotated[Path, typer.Argument(help="campaign YAML (see workflows/)")],
    uri: UriOption = None,
    retry_failed: Annotated[bool, typer.Option(help="relax again candidates stored as failed")] = False,
    strict: Annotated[
        bool, typer.Option(help="stop at the first unreadable structure file instead of recording it")
    ] = False,
    until: Annotated[
        str | None, typer.Option(help="stop after this stage ('hull' or a stage name of the spec)")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="print the plan (candidates, what is stored, stages); compute nothing"
        ),
    ] = False,
) -> None:
    """Generate candidates, relax them in chunks, build the hull, run the funnel's stages.

    Re-running resumes: stored results of the same settings are reused; a stage whose settings
    changed runs again, with every stage after it.
    """
    from mlipflows.campaign import SpecError, load_spec
    from mlipflows.campaign.funnel import record_planned_stages
    from mlipflows.campaign.run import plan_campaign
    from mlipflows.commands.ui import console, err_console, print_results, run_with_progress
    from mlipflows.errors import MlipflowsError
    from mlipflows.results import query_results
    from mlipflows.store import describe_store, ensure_indexes, get_job_store, store_errors

    try:
        campaign = load_spec(spec)
        store = get_job_store(uri)
        with err_console.status("generating candidates"), store_errors(store, "reading stored results"):
            ensure_indexes(store)  # MongoDB only: the fields users query
            plan = plan_campaign(campaign, store, retry_failed, strict, until, record=not dry_run)
    except (SpecError, MlipflowsError) as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    # unreadable files are stored as failed candidates, so every later count includes them
    n_candidates = len(plan.candidates) + len(plan.unreadable)
    unreadable = f" ({len(plan.unreadable)} unreadable)" if plan.unreadable else ""
    err_console.print(
        f"campaign [bold]{campaign.name}[/bold]: {n_candidates} candidates{unreadable}, "
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
    if dry_run:
        print_stage_plan(campaign, until)
        err_console.print("dry run: nothing computed or stored")
        return
    try:
        with store_errors(store, "running the campaign"):
            record_planned_stages(store, campaign, plan.digests)
            run_with_progress(plan.flow, plan.n_to_relax, store, plan.n_relax_chunks, raise_immediately=True)
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}\nrun the same command again to resume")
        raise typer.Exit(2) from None
    if campaign.stages:
        show_status(store, campaign.name)
    if campaign.surrogate is not None:  # where the fine-tuned student went (a model of its own)
        tuned = query_results(
            store, {"campaign": campaign.name, "stage": "finetune", "task_type": "surrogate"}
        )
        if len(tuned) and "checkpoint" in tuned:
            newest = tuned.sort_values("created_at").iloc[-1] if "created_at" in tuned else tuned.iloc[-1]
            err_console.print(f"fine-tuned student: {newest['checkpoint']} (usable as --model)")
    # the campaign's hull as it stands: not a surrogate's provisional screen-hull, not a hull
    # of superseded settings, not a polymorph stage's rebuilt one
    final = {"stage": "hull", "settings_digest": plan.digests.get("hull")}
    crit = {"campaign": campaign.name, "task_type": "stability", **final}
    frame = query_results(store, crit, sort="e_above_hull")
    ok = frame[frame["state"] == "successful"] if len(frame) else frame
    n_stable = int(ok["is_stable"].sum()) if len(ok) else 0
    console.print(f"{len(frame)} stability results, {len(frame) - len(ok)} failed, {n_stable} on the hull")
    if len(ok):
        print_results(ok.head(15), title=f"{campaign.name}: lowest e_above_hull")


@campaign_app.command("status")
def status(
    name: Annotated[str, typer.Argument(help="campaign name")],
    as_json: Annotated[
        bool, typer.Option("--json", help="print the stages as a JSON list (for scripts), not a table")
    ] = False,
    uri: UriOption = None,
) -> None:
    """Per-stage counts (selected / done / failed / unphysical / passed / pending) and queries."""
    from mlipflows.commands.ui import err_console
    from mlipflows.errors import MlipflowsError
    from mlipflows.store import get_job_store

    try:
        found = show_status(get_job_store(uri), name, as_json)
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    if not found:
        raise typer.Exit(2)


def print_stage_plan(campaign: Any, until: str | None = None) -> None:
    """The funnel as the spec declares it: each stage, what it selects from, its rule."""
    from mlipflows.commands.ui import err_console

    stages = ["relax (every candidate)", "hull (every relaxed candidate)"]
    sur = campaign.surrogate
    if sur is not None:  # the relax and hull above are these six surrogate steps
        margin = f"{sur.margin} eV/atom" if sur.margin is not None else "from the student's held-out error"
        stages[0] = (
            f"relax, as a surrogate: label ({campaign.model} relaxes {sur.budget} farthest-point "
            f"candidates) → finetune ({sur.student} on them, with replay) → screen (the student "
            "relaxes every candidate) → screen-hull → check (the teacher re-relaxes those within "
            f"{sur.threshold} eV/atom + margin of the hull; margin {margin})"
        )
        stages[1] = "hull (the teacher's energies where it decided, the student's elsewhere)"
    for k, stage in enumerate(campaign.stages):
        sel = stage.select
        rule = ", ".join(
            f"{name} {value}"
            for name, value in (("where", sel.where), ("order_by", sel.order_by), ("max", sel.max))
            if value is not None
        )
        stages.append(
            f"{stage.name} ({stage.kind}) ← {campaign.stage_source(k)}" + (f": {rule}" if rule else "")
        )
    names = ["relax", "hull", *(s.name for s in campaign.stages)]
    stop = names.index(until) + 1 if until in names else len(names)
    for k, line in enumerate(stages):
        err_console.print(
            f"  {k + 1}. {line}" + ("" if k < stop else "  [dim](after --until: not run)[/dim]")
        )


def unknown_campaign(store: object, name: str) -> str:
    """'no campaign X in this store' with the nearest names (or the list) of those it holds."""
    from mlipflows.campaign.status import list_campaigns
    from mlipflows.selection import suggest

    names = [c["campaign"] for c in list_campaigns(store)]  # type: ignore[arg-type]
    hint = suggest(name, names) or (f" (campaigns here: {', '.join(names[:8])})" if names else "")
    return f"no campaign {name!r} in this store{hint}"


def _duration(seconds: float | None) -> str:
    """A stage's wall time for the status table ('' when it is unknown or had nothing to run)."""
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def show_status(store: object, name: str, as_json: bool = False) -> bool:
    """Print the per-stage table and each stage's query; False when the campaign is unknown."""
    from rich.markup import escape
    from rich.table import Table

    from mlipflows.campaign.status import campaign_status
    from mlipflows.commands.ui import console, err_console

    stages = campaign_status(store, name)  # type: ignore[arg-type]
    if not stages:
        err_console.print(f"[red]error[/red] {unknown_campaign(store, name)}")
        return False
    if as_json:
        import json
        from dataclasses import asdict

        counts = ("selected", "successful", "failed", "unphysical", "passed", "pending")
        # a stage not started has no counts (null), not zero of each
        rows = [{**asdict(s), "ran": s.ran} | ({} if s.ran else dict.fromkeys(counts)) for s in stages]
        typer.echo(json.dumps(rows, indent=1, default=str))
        return True
    table = Table(title=f"campaign {name}")
    numbers = ("selected", "successful", "failed", "unphysical", "passed", "pending")
    for h in ("stage", "kind", *numbers, "state", "time"):
        right = h in numbers or h == "time"
        table.add_column("passed gate" if h == "passed" else h, justify="right" if right else "left")
    for s in stages:
        counts = [str(getattr(s, n)) if s.ran else "" for n in numbers]
        table.add_row(s.stage, s.kind, *counts, s.state, _duration(s.work_s))
    console.print(table)
    for s in stages:
        if s.source:
            query = ", ".join(f"{k}: {v}" for k, v in s.query.items() if v not in (None, "")) or "all"
            line = f"{s.stage} ← {s.source} ({query}), settings digest {s.settings_digest}"
            if s.stopped_at_source:
                held = ", ".join(f"{n} {r}" for r, n in s.stopped_at_source.items())
                line += f"; held back at {s.source}: {held}"
            console.print(escape(line))
        for reason, n in s.failure_reasons:
            console.print(escape(f"  {s.stage}: {n} × {reason}"))
    return True


@campaign_app.command("list")
def list_(uri: UriOption = None) -> None:
    """Every campaign in the store, with its result counts, models and stages."""
    from mlipflows.campaign.status import list_campaigns
    from mlipflows.commands.ui import console, err_console, print_rows
    from mlipflows.errors import MlipflowsError
    from mlipflows.store import get_job_store

    try:
        rows = list_campaigns(get_job_store(uri))
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    if not rows:
        err_console.print("no campaigns in this store")
        raise typer.Exit(1)
    print_rows(rows, title="campaigns")
    console.print(f"{len(rows)} campaigns")


def hull(
    campaign: Annotated[str, typer.Argument(help="campaign name")],
    chemsys: Annotated[
        str | None,
        typer.Option(help="only the phases of this system's hull, e.g. Ba-O-Ti (with BaO, TiO2, …)"),
    ] = None,
    plot: Annotated[Path | None, typer.Option(help="write a phase-diagram plot (PNG) of --chemsys")] = None,
    limit: Annotated[int, typer.Option(help="rows to print (0 = all)", min=0)] = 25,
    uri: UriOption = None,
) -> None:
    """Print a campaign's hull results; optionally plot one chemical system's phase diagram."""
    from mlipflows.commands.ui import err_console, print_results
    from mlipflows.results import query_results
    from mlipflows.store import get_job_store

    store = get_job_store(uri)
    crit: dict = {"campaign": campaign, "task_type": "stability"}
    if chemsys:
        from itertools import combinations

        elements = sorted(chemsys.split("-"))
        chemsys = "-".join(elements)
        # the hull of Ba-O-Ti is made of its subsystems' phases too (BaO, TiO2, …)
        subsystems = ["-".join(c) for n in range(1, len(elements) + 1) for c in combinations(elements, n)]
        crit["chemsys"] = {"$in": subsystems}
    frame = query_results(store, crit, sort="e_above_hull")
    if "stage" in frame:  # the final hull of the current settings (not a surrogate's screen-hull)
        from mlipflows.results import current_stage_documents

        frame = current_stage_documents(frame[frame["stage"].isna() | (frame["stage"] == "hull")])
    if frame.empty and query_results(store, {"campaign": campaign}, limit=1).empty:
        err_console.print(f"[red]error[/red] {unknown_campaign(store, campaign)}")
        raise typer.Exit(2)
    if frame.empty:
        err_console.print(
            f"no stability results for campaign {campaign!r}" + (f" in {chemsys}" if chemsys else "")
        )
        raise typer.Exit(1)
    target = None
    if plot is not None:  # a wrong --plot is reported before the table, not after it
        systems = sorted(set(frame["chemsys"]))
        target = chemsys or (systems[0] if len(systems) == 1 else None)
        if target is None:
            err_console.print(f"[red]error[/red] --plot needs --chemsys (one of {', '.join(systems[:12])}…)")
            raise typer.Exit(2)
        if target not in systems:  # the hull job keeps a diagram per candidate system only
            err_console.print(
                f"[red]error[/red] --plot: no candidate of campaign {campaign} is in {target} itself, "
                f"so it has no phase diagram of its own; plot one of {', '.join(systems[:12])}"
            )
            raise typer.Exit(2)
        if plot.suffix.lower() not in (".png", ".svg", ".pdf"):
            err_console.print(f"[red]error[/red] --plot {plot}: use a .png, .svg or .pdf file name")
            raise typer.Exit(2)
    title = f"{campaign} hull" + (f" of {chemsys} and its subsystems" if chemsys else "")
    print_results(frame.head(limit) if limit else frame, title=title)
    if plot is not None and target is not None:
        from mlipflows.errors import MlipflowsError
        from mlipflows.plots import plot_phase_diagram

        try:
            plot.parent.mkdir(parents=True, exist_ok=True)
            plot_phase_diagram(store, campaign, target, plot)
        except OSError as exc:
            err_console.print(f"[red]error[/red] cannot write {plot}: {exc.strerror or exc}")
            raise typer.Exit(2) from None
        except MlipflowsError as exc:
            err_console.print(f"[red]error[/red] {exc}")
            raise typer.Exit(2) from None
        err_console.print(f"wrote {plot}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.command()(hull)
