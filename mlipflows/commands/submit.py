"""`mlipflows campaign submit`: a campaign as a FireWorks workflow on your LaunchPad."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlipflows.commands.campaign import UriOption, campaign_app


def submit(
    spec: Annotated[Path, typer.Argument(help="campaign YAML (see workflows/)")],
    launchpad: Annotated[Path, typer.Option(help="FireWorks LaunchPad file (workflows/my_launchpad.yaml)")],
    uri: UriOption = None,
    worker_config: Annotated[
        str | None,
        typer.Option(help="mlipflows.yaml path on the workers (default: their MLIPFLOWS_CONFIG etc.)"),
    ] = None,
    retry_failed: Annotated[bool, typer.Option(help="relax again candidates stored as failed")] = False,
    force: Annotated[bool, typer.Option(help="submit although an unfinished workflow exists")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the plan; add nothing to the LaunchPad")
    ] = False,
) -> None:
    """Add the campaign (minus structures already stored) to a LaunchPad; run it with `rlaunch`."""
    from mlipflows.campaign import SpecError, load_spec
    from mlipflows.campaign.submit import launchpad_location, load_launchpad, submit_campaign
    from mlipflows.commands.ui import console, err_console
    from mlipflows.errors import MlipflowsError
    from mlipflows.store import describe_store, get_job_store

    try:
        campaign = load_spec(spec)
        store = get_job_store(uri)
        lp = load_launchpad(launchpad)
        if dry_run:
            from mlipflows.campaign.run import plan_campaign
            from mlipflows.commands.campaign import print_stage_plan

            with err_console.status("generating candidates"):
                plan = plan_campaign(campaign, store, retry_failed, record=False)
            console.print(
                f"campaign [bold]{campaign.name}[/bold]: {len(plan.candidates)} candidates, "
                f"{plan.n_to_relax} structures to relax ({plan.n_skipped} already stored); "
                f"LaunchPad {launchpad_location(lp)}, results → {describe_store(store)}"
            )
            print_stage_plan(campaign)
            err_console.print("dry run: nothing added to the LaunchPad")
            return
        with err_console.status("generating candidates"):
            sub = submit_campaign(campaign, store, lp, worker_config, retry_failed, force)
    except (SpecError, MlipflowsError) as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    plan = sub.plan
    for sid, reason in list(plan.unsupported.items())[:10]:
        err_console.print(f"[yellow]warning[/yellow] {sid}: {reason} (it will be stored as failed)")
    console.print(
        f"campaign [bold]{campaign.name}[/bold]: {len(plan.candidates)} candidates, "
        f"{plan.n_to_relax} structures to relax ({plan.n_skipped} already stored) as "
        f"{len(sub.fw_ids)} fireworks (ids {sub.fw_ids[0]}-{sub.fw_ids[-1]}) on {launchpad_location(lp)}; "
        f"results → {describe_store(store)}"
    )
    from mlipflows.store import store_identity

    local = store_identity(store).get("path")
    if local:  # workers elsewhere cannot reach a sqlite file; those that try fail, loudly
        err_console.print(
            f"[yellow]warning[/yellow] results go to the embedded store {local} on this machine: only "
            "workers here with the same MLIPFLOWS_HOME can write them (others fail their fireworks). "
            "For a cluster, submit with --uri mongodb://… (or mlipflows.yaml) that every worker reaches."
        )
        console.print(f"run workers on this machine with: rlaunch -l {launchpad} rapidfire")
    else:
        console.print(
            f"run workers with: MLIPFLOWS_CONFIG=/path/to/mlipflows.yaml rlaunch -l {launchpad} rapidfire"
        )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    campaign_app.command("submit")(submit)
