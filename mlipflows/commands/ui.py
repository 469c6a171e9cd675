"""What every command shares: consoles, progress bars over jobflow runs, result tables."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

# Piped output (CI logs, `make demo | tee`) gets a wide table instead of rich's 80 columns,
# unless COLUMNS says how wide.
console = Console(width=None if Console().is_terminal or os.environ.get("COLUMNS") else 160)
# messages are one line each, whatever the width (a wrapped error reads as several)
err_console = Console(stderr=True, soft_wrap=True)

EXAMPLES = Path(__file__).parents[1] / "data" / "examples"

UriOption = Annotated[
    str | None, typer.Option(help="MongoDB URI of the results (default: mlipflows.yaml, else embedded)")
]
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda or auto")]


def _writable(value: Path | None, folder: bool) -> Path | None:
    """Where a command writes, checked before any work so that a typo does not cost the
    calculation; nothing is created here (the command makes missing folders when it writes).
    ``folder``: the path is a directory."""
    if value is None:
        return None
    if folder and value.exists() and not value.is_dir():
        raise typer.BadParameter(f"{value} is a file; give a folder")
    if not folder and value.is_dir():
        raise typer.BadParameter(f"{value} is a folder; give a file name")
    existing = value if folder else value.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise typer.BadParameter(f"cannot write under {existing}: it is a file")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise typer.BadParameter(f"cannot write under {existing}: permission denied")
    return value


def output_path(value: Path | None) -> Path | None:
    """Option callback for an output file (typer passes the value only)."""
    return _writable(value, folder=False)


def output_folder(value: Path | None) -> Path | None:
    """Option callback for an output folder."""
    return _writable(value, folder=True)


TagOption = Annotated[list[str] | None, typer.Option(help="label stored with every result (repeatable)")]
JsonOption = Annotated[
    Path | None, typer.Option("--json", help="write full documents here", callback=output_path)
]


def write_documents(path: Path, docs: list[dict[str, Any]]) -> None:
    """The stored documents of a run as one JSON list (data-store fields included)."""
    import json

    from monty.json import jsanitize

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(jsanitize(docs, strict=False, enum_values=True), indent=1, default=str))
    err_console.print(f"wrote {path}")


def explicit(ctx: typer.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (not its default)."""
    source = ctx.get_parameter_source(name)
    # by name: typer's click and the installed click may be two copies of the same enum
    return source is not None and source.name in ("COMMANDLINE", "ENVIRONMENT")


def positive(value: float) -> float:
    """Option callback: a threshold that must be > 0 (typer's ``min`` admits the bound)."""
    if not value > 0:
        raise typer.BadParameter(f"must be > 0 (got {value})")
    return value


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as one error line; return the Exit to raise (``raise fail(...)``)."""
    err_console.print(f"[red]error[/red] {message}")
    return typer.Exit(code)


def check_model(model: str, device: str = "cpu", dtype: str = "float32") -> Any:
    """Load the model (and check the device) before any work; a problem is one line, exit 2."""
    from mlipflows.errors import MlipflowsError
    from mlipflows.potentials import load_potential

    try:
        return load_potential(model, device=device, dtype=dtype)
    except (MlipflowsError, ValueError) as exc:
        raise fail(str(exc)) from None


def open_store(uri: str | None) -> Any:
    """The results store, checked to answer before any work: an unreachable server or a bad
    configuration is one line naming the (redacted) store, exit 1, not a traceback after hours."""
    from mlipflows.errors import MlipflowsError
    from mlipflows.store import connect_store, get_job_store

    try:
        return connect_store(get_job_store(uri))
    except MlipflowsError as exc:
        raise fail(str(exc), code=1) from None


def run_and_fetch(job: Any, n_structures: int, store: Any) -> Any:
    """Run one job with progress bars and return its output, read back from ``store``."""
    run_with_progress(job, n_structures, store)
    store.connect()
    return store.get_output(job.uuid, load=True)


class _BarReporter:
    """Feeds engine progress (structures finished, steps, chunks) into rich progress bars."""

    def __init__(self, progress: Progress, task: int, chunk_task: int | None = None) -> None:
        self.progress, self.main_task, self.chunk_task = progress, task, chunk_task
        self.steps, self.t0 = 0, time.perf_counter()
        self.stage_structures: int | None = None  # set while a funnel stage's chunks run
        self.named: dict[str, Any] = {}  # bars of report_task, by label

    def advance(self, finished: int, steps: int) -> None:
        self.steps += steps
        rate = f"{self.steps / max(time.perf_counter() - self.t0, 1e-9):.1f} steps/s"
        if self.stage_structures is None:
            self.progress.update(self.main_task, advance=finished, rate=rate)
            return
        # a stage bar counts chunk jobs (a known total); its structures are many per candidate
        # (strained cells, relaxations), so they are shown as a count, not as a fraction
        self.stage_structures += finished
        self.progress.update(self.main_task, rate=f"{self.stage_structures} structures, {rate}")

    def stage(self, label: str, n_selected: int, n_chunks: int) -> None:
        self.main_task = self.chunk_task = self.progress.add_task(
            f"{label} chunks", total=max(n_chunks, 1), rate=f"{n_selected} candidates"
        )
        self.stage_structures, self.steps, self.t0 = 0, 0, time.perf_counter()
        if not n_chunks:
            self.progress.update(self.main_task, advance=1)

    def chunk_done(self) -> None:
        if self.chunk_task is not None:
            self.progress.update(self.chunk_task, advance=1)

    def task(self, label: str, advance: int, total: int) -> None:
        if label not in self.named or self.progress.tasks[self.named[label]].finished:
            self.named[label] = self.progress.add_task(label, total=total, rate="")
        self.progress.update(self.named[label], advance=advance)


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
            with _job_failures() as failures:
                run_locally(
                    flow, store=store, log=False, ensure_success=True, raise_immediately=raise_immediately
                )
        except RuntimeError as exc:
            if not failures:
                raise
            name, reason = failures[0]
            more = f" ({len(failures) - 1} more jobs failed)" if len(failures) > 1 else ""
            err_console.print(
                f"[red]error[/red] job {name!r} failed: {reason}{more}; the other jobs' results are stored"
            )
            raise typer.Exit(2) from exc
        finally:
            set_reporter(None)


@contextmanager
def _job_failures() -> Iterator[list[tuple[str, str]]]:
    """(job name, the exception's last line) of each job jobflow's run_locally saw fail; it
    only logs them (at INFO, a whole traceback), and the CLI runs it without a log."""
    import logging

    failures: list[tuple[str, str]] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            text = record.getMessage()
            if " failed with exception:" in text:
                name, _, trace = text.partition(" failed with exception:")
                failures.append((name, trace.strip().splitlines()[-1] if trace.strip() else "?"))

    logger = logging.getLogger("jobflow.managers.local")
    handler, level, propagate = Catch(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the tracebacks stay out of the terminal
    try:
        yield failures
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


@contextmanager
def progress_bars() -> Iterator[None]:
    """Bars for named work reported with :func:`mlipflows.progress.report_task` (no jobflow run)."""
    from mlipflows.progress import set_reporter

    columns = (
        TextColumn("[bold]{task.description:<12}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        set_reporter(_BarReporter(progress, progress.add_task("", total=None, visible=False)))
        try:
            yield
        finally:
            set_reporter(None)


def print_results(frame: Any, fmt: str = "table", title: str | None = None, total: int | None = None) -> None:
    """Rows as a table (headline columns), CSV or JSON; a table says how many rows it shows."""
    from mlipflows.results import summary_table

    if fmt == "json":
        # pandas writes "/" as "\/" (valid JSON, but ids like "a/POSCAR" read badly in a file)
        typer.echo(frame.to_json(orient="records", indent=2, default_handler=str).replace("\\/", "/"))
        return
    if fmt == "csv":
        from mlipflows.results import csv_ready

        typer.echo(csv_ready(frame).to_csv(index=False))  # lists as JSON, as --export writes them
        return
    table_frame = summary_table(frame)
    integral = {c for c in table_frame.columns if _integral(table_frame[c])}
    rows = [
        [
            _fmt(int(v)) if c in integral and v == v and v is not None else _fmt(v)
            for c, v in zip(table_frame.columns, row, strict=True)
        ]
        for row in table_frame.itertuples(index=False)
    ]
    columns = list(table_frame.columns)
    n_shown = len(columns)
    table, width = _table(title, columns, rows, compact=False)
    while width > console.width:
        table, width = _table(title, columns[:n_shown], [r[:n_shown] for r in rows], compact=True)
        if n_shown <= 2 or width <= console.width:
            break
        n_shown -= 1  # drop columns from the right rather than cut numbers short
    console.print(table)
    shown = columns[:n_shown]
    hidden = [str(c) for c in table_frame.columns[len(shown) :]]
    if hidden:
        console.print(
            f"not shown at {console.width} columns: {', '.join(hidden)} "
            "(a wider terminal, COLUMNS=N, or --format csv|json shows them)"
        )
    if total is not None and total > len(frame):
        console.print(
            f"showing {len(frame)} of {total}; --limit 0 shows all, --format csv|json or --export writes them"
        )
    elif total is not None:
        console.print(f"{total} rows")


def _integral(col: Any) -> bool:
    """A float column whose values are all whole numbers (counts shown as 12, not 12.0000)."""
    import pandas as pd

    values = pd.to_numeric(col, errors="coerce").dropna() if col.dtype.kind in "fiu" else []
    whole = len(values) > 0 and col.dtype.kind == "f" and bool((values == values.round()).all())
    # a count is a count even when every value is 0 (steps of failed runs); 0.0 eV stays a float
    leaf = str(col.name).rsplit(".", 1)[-1].lower()
    counting = (
        leaf.startswith("n_")
        or leaf in ("steps", "n_steps", "nsites", "sites", "dup.")
        or "spacegroup" in leaf
    )
    return whole and (counting or float(values.abs().max()) >= 1)


def _table(title: str | None, columns: list[Any], rows: list[list[str]], compact: bool) -> tuple[Table, int]:
    """The table and its width. Every column gets a fixed width: numbers their full width (a
    number cut to "19.…" reads as a value); headers and text in full, or when ``compact``,
    headers wrapped at words and text folded at 12 characters; the id column never folds (it
    is what a user copies into the next command)."""
    table = Table(title=title, show_lines=False)
    total = 1
    for k, col in enumerate(columns):
        cells = [r[k] for r in rows if r[k]]
        longest = max((len(c) for c in cells), default=0)
        header = min(max(len(w) for w in str(col).split() or [""]), 10) if compact else len(str(col))
        numeric = bool(cells) and all(_is_number(c) for c in cells)
        keep = numeric or str(col) == "id"
        width = max(longest if keep else min(longest, 12 if compact else 60), header, 1)
        table.add_column(str(col), justify="right" if numeric else "left", width=width, overflow="fold")
        total += width + 3
    for r in rows:
        table.add_row(*r)
    return table, total


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, list | tuple) and v and all(isinstance(x, int | float) for x in v):
        return ", ".join(f"{x:.4g}" for x in v)  # κ per temperature
    return str(v)


def print_rows(rows: list[dict[str, Any]], title: str | None = None) -> None:
    """A list of flat dicts as a table (every key a column; numbers right-aligned)."""
    table = Table(title=title)
    keys = list(rows[0]) if rows else []
    for k in keys:
        numeric = all(isinstance(r.get(k), int | float) for r in rows)
        table.add_column(str(k), justify="right" if numeric else "left")
    for r in rows:
        table.add_row(*[_fmt(r.get(k)) for k in keys])
    console.print(table)
