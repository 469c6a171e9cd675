"""`mlipflows elastic` and `mlipflows bench elastic`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

UriOption = Annotated[str | None, typer.Option(help="MongoDB URI (default: configuration / embedded)")]


def elastic(
    files: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files")],
    model: Annotated[
        str, typer.Option(help="registry name, checkpoint path or pkg.module:factory")
    ] = "sevennet-0",
    fmax: Annotated[float, typer.Option(help="force threshold of the tight relaxation, eV/Å")] = 0.002,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    campaign: Annotated[str | None, typer.Option(help="campaign name stored with every result")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="label stored with every result (repeatable)")] = None,
    chunk_size: Annotated[int, typer.Option(help="structures per job (25 cells each)")] = 32,
    json_out: Annotated[Path | None, typer.Option("--json", help="write full documents here")] = None,
    uri: UriOption = None,
) -> None:
    """Elastic tensor C_ij (GPa), K/G (VRH), Young's modulus, Poisson ratio and Born stability."""
    from monty.json import jsanitize

    from mlipflows.cli import err_console, run_with_progress
    from mlipflows.io import read_many
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.makers.elastic import ElasticMaker, ElasticSettings, elastic_flow
    from mlipflows.store import describe_store, get_job_store

    loaded, failed = read_many(files)
    for reason in failed.values():
        err_console.print(f"[red]error[/red] {reason}")
    if not loaded:
        err_console.print("[red]no readable structures[/red]")
        raise typer.Exit(1)
    settings = ElasticSettings(relax_fmax=fmax, strain_fmax=fmax)
    maker = ElasticMaker(
        chunk=ChunkSettings(model=model, device=device, campaign=campaign, tags=tag or []), settings=settings
    )
    flow = elastic_flow(
        [x.structure for x in loaded], [x.structure_id for x in loaded], chunk_size=chunk_size, maker=maker
    )
    store = get_job_store(uri)
    err_console.print(f"{len(loaded)} structures × 25 cells → {describe_store(store)}")
    run_with_progress(flow, len(loaded), store)
    store.connect()
    docs: list[dict[str, Any]] = []
    for j in flow.jobs:
        docs.extend(store.get_output(j.uuid, load=True))
    print_elastic(docs, model)
    if json_out is not None:
        json_out.write_text(
            json.dumps(jsanitize(docs, strict=False, enum_values=True), indent=1, default=str)
        )
        err_console.print(f"wrote {json_out}")
    n_bad = sum(d["state"] != "successful" for d in docs)
    raise typer.Exit(1 if failed or n_bad else 0)


def print_elastic(docs: list[dict[str, Any]], model: str) -> None:
    """A C_ij block and a moduli line per structure; warnings and errors in words."""
    from rich.table import Table

    from mlipflows.cli import console

    for d in docs:
        title = f"{d['structure_id']} ({d['formula_pretty']}) with {model}"
        if d["state"] != "successful":
            console.print(f"[red]{title}: failed[/red] {d['error']}")
            continue
        table = Table(title=f"{title}: C_ij (GPa, IEEE frame)", show_header=False)
        for _ in range(6):
            table.add_column(justify="right")
        for row in d["elastic_tensor"]:
            table.add_row(*[f"{x:.1f}" for x in row])
        console.print(table)
        console.print(
            f"K_VRH {d['k_vrh']:.1f} GPa  G_VRH {d['g_vrh']:.1f} GPa  E {d['youngs_modulus']:.1f} GPa  "
            f"ν {d['poisson_ratio']:.3f}  A^U {d['universal_anisotropy']:.3f}  "
            f"Born stable: {'yes' if d['born_stable'] else 'NO'}  "
            f"strains used {d['n_strains_used']}/{d['n_strains_total']}  "
            f"fit residual {d['fit_residual']:.3f} GPa"
        )
        for w in d.get("warnings") or []:
            console.print(f"[yellow]warning[/yellow] {w}")


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(elastic)
