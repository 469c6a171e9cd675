"""`mlipflows models`, `relax`, `demo`: the registry and relaxing files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from mlipflows.commands.ui import (
    EXAMPLES,
    JsonOption,
    UriOption,
    check_model,
    console,
    err_console,
    positive,
    print_results,
    run_with_progress,
)


def models() -> None:
    """List the model registry: elements, cutoff, where the weights come from, offline loading."""
    from mlipflows.potentials import REGISTRY, load_potential

    table = Table(title="mlipflows models")
    for col in ("name", "elements", "cutoff (Å)", "source", "loads offline", "measured error", "description"):
        table.add_column(col, overflow="fold")
    status = err_console.status(
        f"loading the {len(REGISTRY)} models (the 'loads offline' column is a real load)"
    )
    status.start()
    for name, entry in REGISTRY.items():
        status.update(f"loading {name} (the 'loads offline' column is a real load)")
        try:
            pot = load_potential(name)
            row = [
                name,
                str(len(pot.elements)),
                f"{pot.cutoff:.1f}",
                entry.source,
                "yes",
                measured_error(pot),
            ]
        except Exception as exc:  # a broken install must not hide the other models
            row = [name, "?", "?", entry.source, f"no: {exc}", "–"]
        table.add_row(*row, entry.description)
    status.stop()
    console.print(table)
    console.print(
        "Any model also loads as NAME+d3 (Grimme D3(BJ) dispersion, PBE parameters) or "
        "NAME+d3:XC, and as NAME+zbl (a ZBL repulsive core, for inputs of unknown quality); "
        "a checkpoint path (PATH@HEAD for one head of a multi-head one) or package.module:factory "
        "loads a custom model."
    )


def measured_error(pot: object) -> str:
    """What a checkpoint of ours says about its own error: held out against its teacher (a
    distilled student) or on its validation split; "–" for models that are not ours."""
    from mlipflows.models.potential import ModelPotential

    if not isinstance(pot, ModelPotential):
        return "–"
    import torch

    meta = torch.load(pot.card.source, map_location="cpu", weights_only=True).get("metadata", {})
    held = (meta.get("heldout") or {}).get("all")
    row, what = (
        (held, f"vs {meta.get('teacher')}, {held['n']} held out")
        if held
        else (meta.get("validation"), "validation")
    )
    if not row:
        return "–"
    return f"E {row['energy_mae_mev_atom']:.1f} meV/atom, F {row['force_mae_ev_a']:.3f} eV/Å ({what})"


def _relax_files(
    files: list[Path],
    model: str,
    fmax: float,
    steps: int,
    device: str,
    tag: list[str],
    campaign: str | None,
    cell_filter: str,
    chunk_size: int,
    json_out: Path | None,
    uri: str | None,
) -> int:
    from mlipflows.commands.ui import open_store
    from mlipflows.engine import RelaxSettings
    from mlipflows.io import read_many
    from mlipflows.makers import RelaxMaker, relax_flow
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.results import build_criteria, query_results
    from mlipflows.store import describe_store

    potential = check_model(model, device)  # before any file is read or job made
    loaded, failed = read_many(files)
    for reason in failed.values():
        err_console.print(f"[red]error[/red] {reason}")
    if not loaded:
        err_console.print("[red]no readable structures[/red]")
        return 1
    maker = RelaxMaker(
        chunk=ChunkSettings(model=model, device=device, campaign=campaign, tags=tag),
        relax=RelaxSettings(fmax=fmax, max_steps=steps, cell_filter=cell_filter),  # type: ignore[arg-type]
    )
    flow = relax_flow(
        [x.structure for x in loaded],
        [x.structure_id for x in loaded],
        chunk_size=chunk_size,
        maker=maker,
    )
    store = open_store(uri)
    err_console.print(f"{len(loaded)} structures → {describe_store(store)}")
    run_with_progress(flow, len(loaded), store)
    # this run's relaxations only (not older phonon or elastic results of the same ids)
    crit = {"job_uuid": {"$in": [j.uuid for j in flow.jobs]}, "task_type": "relax"}
    frame = query_results(store, build_criteria(campaign=campaign, model=potential.name, extra=crit))
    print_results(frame, title=f"relaxed with {model}", total=len(frame))
    ok = frame["state"] == "successful" if "state" in frame else frame.index == frame.index
    # only relaxations that ran out of steps: a failed or unphysical one stopped for its reason
    stuck = int((ok & (frame["converged"] == False)).sum()) if "converged" in frame else 0  # noqa: E712
    if stuck:
        err_console.print(
            f"[yellow]warning[/yellow] {stuck} of {len(frame)} did not converge within {steps} steps "
            f"(fmax {fmax} eV/Å): stored with converged=False; more --steps, or leave them out with "
            '--where "converged == true"'
        )
    n_bad = int((~ok).sum())
    if n_bad:
        err_console.print(
            f"[yellow]warning[/yellow] {n_bad} of {len(frame)} failed or unphysical (stored with their "
            "reason, see the error column)"
        )
    if json_out is not None:
        _write_json(store, flow, json_out, failed)
        err_console.print(f"wrote {json_out}")
    return 1 if failed or n_bad else 0


def _write_json(store: object, flow: object, path: Path, failed: dict[str, str]) -> None:
    from monty.json import jsanitize

    docs = []
    store.connect()  # type: ignore[attr-defined]
    for job in flow.jobs:  # type: ignore[attr-defined]
        docs.extend(store.get_output(job.uuid, load=True))  # type: ignore[attr-defined]
    payload = {
        "results": jsanitize(docs, strict=False, enum_values=True),
        "unreadable_files": failed,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=str))


def relax(
    files: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files, or folders of them")],
    model: Annotated[
        str, typer.Option(help="registry name, checkpoint path or pkg.module:factory")
    ] = "sevennet-0",
    fmax: Annotated[float, typer.Option(help="force convergence, eV/Å", callback=positive)] = 0.05,
    steps: Annotated[int, typer.Option(help="maximum FIRE steps", min=1)] = 500,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    tag: Annotated[list[str] | None, typer.Option(help="label stored with every result (repeatable)")] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign name stored with every result")] = None,
    cell_filter: Annotated[str, typer.Option(help="frechet, hydrostatic or fixed")] = "frechet",
    chunk_size: Annotated[int, typer.Option(help="structures per job", min=1)] = 256,
    json_out: JsonOption = None,
    uri: UriOption = None,
) -> None:
    """Relax structures (positions + cell) in batches and store one result per structure."""
    if cell_filter not in ("frechet", "hydrostatic", "fixed"):
        raise typer.BadParameter("--cell-filter must be frechet, hydrostatic or fixed")
    code = _relax_files(
        files,
        model,
        fmax,
        steps,
        device,
        tag or [],
        campaign,
        cell_filter,
        chunk_size,
        json_out,
        uri,
    )
    raise typer.Exit(code)


def demo(
    model: Annotated[str, typer.Option(help="model to relax the examples with")] = "sevennet-0",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
) -> None:
    """Relax the twelve shipped example structures into the embedded store and print the table."""
    files = sorted(EXAMPLES.glob("*.cif"))
    code = _relax_files(files, model, 0.05, 500, device, ["demo"], "demo", "frechet", 256, None, None)
    raise typer.Exit(code)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(models)
    app.command()(relax)
    app.command()(demo)
