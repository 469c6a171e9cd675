"""The ``mlipflows`` command line (typer + rich)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(
    help="High-throughput materials screening with machine-learned potentials.",
    no_args_is_help=True,
)
# Piped output (CI logs, `make demo | tee`) gets a wide table instead of rich's 80 columns.
console = Console(width=None if Console().is_terminal else 160)
err_console = Console(stderr=True)

EXAMPLES = Path(__file__).parent / "data" / "examples"


class _BarReporter:
    """Feeds engine progress (structures finished, steps, chunks) into rich progress bars."""

    def __init__(self, progress: Progress, task: int, chunk_task: int | None = None) -> None:
        self.progress, self.task, self.chunk_task = progress, task, chunk_task
        self.steps, self.t0 = 0, time.perf_counter()

    def advance(self, finished: int, steps: int) -> None:
        self.steps += steps
        rate = self.steps / max(time.perf_counter() - self.t0, 1e-9)
        self.progress.update(self.task, advance=finished, rate=f"{rate:.1f} steps/s")

    def chunk_done(self) -> None:
        if self.chunk_task is not None:
            self.progress.update(self.chunk_task, advance=1)


def run_with_progress(
    flow: object,
    n_structures: int,
    store: object,
    n_chunks: int | None = None,
    raise_immediately: bool = False,
) -> None:
    """``run_locally`` with bars for structures (and chunk jobs when ``n_chunks`` is given).

    ``raise_immediately`` stops at the first failing job with its exception (e.g. the store
    went away) instead of jobflow's generic "did not finish" at the end.
    """
    from jobflow import run_locally

    from mlipflows.progress import set_reporter

    columns = (
        TextColumn("[bold]{task.description:<10}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("structures", total=n_structures, rate="")
        chunk_task = progress.add_task("chunks", total=n_chunks, rate="") if n_chunks else None
        set_reporter(_BarReporter(progress, task, chunk_task))
        try:
            run_locally(
                flow, store=store, log=False, ensure_success=True, raise_immediately=raise_immediately
            )
        finally:
            set_reporter(None)


def print_results(frame: object, fmt: str = "table", title: str | None = None) -> None:
    from mlipflows.results import summary_table

    if fmt == "json":
        typer.echo(frame.to_json(orient="records", indent=2, default_handler=str))  # type: ignore[attr-defined]
        return
    if fmt == "csv":
        typer.echo(frame.to_csv(index=False))  # type: ignore[attr-defined]
        return
    table_frame = summary_table(frame)  # type: ignore[arg-type]
    table = Table(title=title, show_lines=False)
    for col in table_frame.columns:
        table.add_column(str(col), overflow="fold")
    for row in table_frame.itertuples(index=False):
        table.add_row(*[_fmt(v) for v in row])
    console.print(table)


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


@app.command()
def models() -> None:
    """List the model registry: elements, cutoff, where the weights come from, offline loading."""
    from mlipflows.potentials import REGISTRY, load_potential

    table = Table(title="mlipflows models")
    for col in ("name", "elements", "cutoff (Å)", "source", "loads offline", "description"):
        table.add_column(col, overflow="fold")
    for name, entry in REGISTRY.items():
        try:
            pot = load_potential(name)
            row = [name, str(len(pot.elements)), f"{pot.cutoff:.1f}", entry.source, "yes"]
        except Exception as exc:  # a broken install must not hide the other models
            row = [name, "?", "?", entry.source, f"no: {exc}"]
        table.add_row(*row, entry.description)
    console.print(table)
    console.print(
        "Any model also loads as NAME+d3 (Grimme D3(BJ) dispersion, PBE parameters) or "
        "NAME+d3:XC; a checkpoint path or package.module:factory loads a custom model."
    )


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
    from mlipflows.engine import RelaxSettings
    from mlipflows.io import read_many
    from mlipflows.makers import RelaxMaker, relax_flow
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.results import build_criteria, query_results
    from mlipflows.store import describe_store, get_job_store

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
    store = get_job_store(uri)
    err_console.print(f"{len(loaded)} structures → {describe_store(store)}")
    run_with_progress(flow, len(loaded), store)
    ids = [x.structure_id for x in loaded]
    frame = query_results(store, build_criteria(campaign=campaign, extra={"structure_id": {"$in": ids}}))
    frame = frame[frame["model.name"] == frame["model.name"].iloc[-1]] if len(frame) else frame
    print_results(frame, title=f"relaxed with {model}")
    if json_out is not None:
        _write_json(store, flow, json_out, failed)
        err_console.print(f"wrote {json_out}")
    return 1 if failed else 0


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
    path.write_text(json.dumps(payload, indent=1, default=str))


@app.command()
def relax(
    files: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files")],
    model: Annotated[
        str, typer.Option(help="registry name, checkpoint path or pkg.module:factory")
    ] = "sevennet-0",
    fmax: Annotated[float, typer.Option(help="force convergence, eV/Å")] = 0.05,
    steps: Annotated[int, typer.Option(help="maximum FIRE steps")] = 500,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    tag: Annotated[list[str] | None, typer.Option(help="label stored with every result (repeatable)")] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign name stored with every result")] = None,
    cell_filter: Annotated[str, typer.Option(help="frechet, hydrostatic or fixed")] = "frechet",
    chunk_size: Annotated[int, typer.Option(help="structures per job")] = 256,
    json_out: Annotated[Path | None, typer.Option("--json", help="write full documents here")] = None,
    uri: Annotated[str | None, typer.Option(help="MongoDB URI (default: configuration / embedded)")] = None,
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


@app.command()
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
    uri: Annotated[str | None, typer.Option(help="MongoDB URI (default: configuration / embedded)")] = None,
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


@app.command()
def demo(
    model: Annotated[str, typer.Option(help="model to relax the examples with")] = "sevennet-0",
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
) -> None:
    """Relax the twelve shipped example structures into the embedded store and print the table."""
    files = sorted(EXAMPLES.glob("*.cif"))
    code = _relax_files(files, model, 0.05, 500, device, ["demo"], "demo", "frechet", 256, None, None)
    raise typer.Exit(code)


bench_app = typer.Typer(
    help="Reproduce materials benchmarks (Matbench Discovery style).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


def _register_command_modules() -> None:
    import importlib
    import pkgutil

    from mlipflows import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"mlipflows.commands.{info.name}")
        module.register(app, bench_app)


_register_command_modules()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
