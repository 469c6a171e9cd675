"""`mlipflows elastic` and `mlipflows bench elastic`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from mlipflows.commands.ui import JsonOption, TagOption, UriOption, check_model, positive, write_documents
from mlipflows.engine.symmetry import DEFAULT_SYMPREC
from mlipflows.home import reference_data


def elastic(
    files: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files, or folders of them")],
    model: Annotated[
        str, typer.Option(help="registry name, checkpoint path or pkg.module:factory")
    ] = "sevennet-0",
    fmax: Annotated[
        float, typer.Option(help="force threshold of the tight relaxation, eV/Å", callback=positive)
    ] = 0.002,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    campaign: Annotated[str | None, typer.Option(help="campaign name stored with every result")] = None,
    tag: TagOption = None,
    chunk_size: Annotated[int, typer.Option(help="structures per job (25 cells each)", min=1)] = 32,
    symprec: Annotated[
        float,
        typer.Option(
            help="symmetry tolerance, Å, as for every command (0.1 for a noisy input)", callback=positive
        ),
    ] = DEFAULT_SYMPREC,
    json_out: JsonOption = None,
    uri: UriOption = None,
) -> None:
    """Elastic tensor C_ij (GPa), K/G (VRH), Young's modulus, Poisson ratio and Born stability."""
    from mlipflows.commands.ui import err_console, open_store, run_with_progress
    from mlipflows.io import read_many
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.makers.elastic import ElasticMaker, ElasticSettings, elastic_flow
    from mlipflows.store import describe_store

    check_model(model, device)  # before any file is read or job made
    loaded, failed = read_many(files)
    for reason in failed.values():
        err_console.print(f"[red]error[/red] {reason}")
    if not loaded:
        err_console.print("[red]no readable structures[/red]")
        raise typer.Exit(1)
    from mlipflows.commands.phonons import warn_symmetry

    warn_symmetry(
        loaded,
        symprec,
        "else it is relaxed without symmetry constraints and, unless it relaxes back to the "
        "symmetric structure, its tensor is not symmetrized",
    )
    settings = ElasticSettings.with_fmax(fmax, symprec=symprec)
    maker = ElasticMaker(
        chunk=ChunkSettings(model=model, device=device, campaign=campaign, tags=tag or []), settings=settings
    )
    flow = elastic_flow(
        [x.structure for x in loaded], [x.structure_id for x in loaded], chunk_size=chunk_size, maker=maker
    )
    store = open_store(uri)
    err_console.print(f"{len(loaded)} structures × 25 cells → {describe_store(store)}")
    # each structure's warnings are printed with its tensor below, not also as log lines
    maker_log = logging.getLogger("mlipflows.makers.elastic")
    level = maker_log.level
    maker_log.setLevel(logging.ERROR)
    try:
        run_with_progress(flow, len(loaded), store)
    finally:
        maker_log.setLevel(level)
    store.connect()
    docs: list[dict[str, Any]] = []
    for j in flow.jobs:
        docs.extend(store.get_output(j.uuid, load=True))
    print_elastic(docs, model)
    if json_out is not None:
        write_documents(json_out, docs)
    n_bad = sum(d["state"] != "successful" for d in docs)
    raise typer.Exit(1 if failed or n_bad else 0)


def print_elastic(docs: list[dict[str, Any]], model: str) -> None:
    """A C_ij block and a moduli line per structure; warnings and errors in words."""
    from rich.table import Table

    from mlipflows.commands.ui import console

    for d in docs:
        group = f", space group {d['spacegroup']}" if d.get("spacegroup") else ""
        title = f"{d['structure_id']} ({d['formula_pretty']}{group}) with {model}"
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


def bench_elastic(
    model: Annotated[str, typer.Option(help="model spec")] = "sevennet-0",
    data: Annotated[Path, typer.Option(help="mp_val_clean.json.gz or the matcalc elasticity file")] = Path(
        "../shared/data/mp-elastic-tensors"
    ),
    limit: Annotated[int | None, typer.Option(help="seeded random sample of this many", min=1)] = None,
    max_sites: Annotated[int | None, typer.Option(help="only materials with at most this many sites")] = None,
    seed: Annotated[int, typer.Option(help="sample seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    chunk_size: Annotated[int, typer.Option(help="materials per job", min=1)] = 16,
    out: Annotated[Path, typer.Option(help="folder for the table, metrics and plot")] = Path(
        "analysis/elastic"
    ),
    stored_only: Annotated[
        bool,
        typer.Option(help="compute nothing: evaluate the tensors already stored (after a time-boxed run)"),
    ] = False,
    uri: UriOption = None,
) -> None:
    """K_VRH, G_VRH and C_ij MAE vs MP DFT; Born-stable fraction (resumable: reuses stored tensors)."""
    from mlipflows.bench.elastic import CAMPAIGN, evaluate, load_elastic_data, parity_plot, stored_documents
    from mlipflows.bench.elastic import summarize as summarize_elastic
    from mlipflows.commands.ui import console, err_console, open_store, run_with_progress
    from mlipflows.errors import DataNotFoundError
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.makers.elastic import ElasticMaker, elastic_flow

    try:
        name, records = load_elastic_data(reference_data(data), limit, seed, max_sites)
    except DataNotFoundError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    store = open_store(uri)
    potential = check_model(model, device)
    campaign = f"{CAMPAIGN}-{name}"
    done = stored_documents(store, campaign, potential.card.checksum)
    todo = [r for r in records if r.material_id not in done]
    err_console.print(f"{len(records)} {name} materials, {len(todo)} to compute with {model}")
    if todo and not stored_only:
        maker = ElasticMaker(
            chunk=ChunkSettings(model=model, device=device, campaign=campaign, tags=["benchmark"])
        )
        flow = elastic_flow(
            [r.structure for r in todo], [r.material_id for r in todo], chunk_size=chunk_size, maker=maker
        )
        run_with_progress(flow, len(todo), store, len(flow.jobs))
        done = stored_documents(store, campaign, potential.card.checksum)
    frame = evaluate(records, done)
    metrics = summarize_elastic(frame)
    metrics.update(
        {"model": model, "checksum": potential.card.checksum, "data": name, "limit": limit, "seed": seed}
    )
    metrics["max_sites"] = max_sites
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{potential.name}-{name}-n{len(records)}"
    frame.to_csv(out / f"{stem}.csv", index=False)
    (out / f"{stem}-metrics.json").write_text(json.dumps(metrics, indent=2))
    parity_plot(frame, potential.name, metrics, out / f"{stem}-parity.png")

    def gpa(key: str, scale: float = 1.0, unit: str = "GPa") -> str:
        value = metrics[key]
        return "n/a" if value is None else f"{scale * value:.1f} {unit}"

    console.print(
        f"{potential.name} on {len(records)} {name} materials ({metrics['n_not_run']} not run, "
        f"{metrics['n_failed']} failed, {metrics['n_unphysical_excluded']} unphysical and excluded, "
        f"{metrics['n_with_warnings']} with warnings)\n"
        f"  MAE K_VRH {gpa('mae_k_vrh_gpa')}  MAE G_VRH {gpa('mae_g_vrh_gpa')}  "
        f"MAE C_ij {gpa('mae_cij_gpa')}  "
        f"Born-stable {gpa('fraction_born_stable', 100, '%')}\n"
        f"wrote {out}/{stem}.csv, -metrics.json, -parity.png"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(elastic)
    bench.command("elastic")(bench_elastic)
