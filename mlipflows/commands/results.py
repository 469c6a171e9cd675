"""`mlipflows results`: query, filter, join, sort and export stored results and their structures."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlipflows.commands.ui import UriOption, err_console, print_results

TABLE_ROWS = 50  # a table shows this many rows unless --limit says otherwise


def results(
    tag: Annotated[str | None, typer.Option(help="only results with this tag")] = None,
    campaign: Annotated[str | None, typer.Option(help="only this campaign")] = None,
    model: Annotated[str | None, typer.Option(help="only this model name")] = None,
    state: Annotated[str | None, typer.Option(help="successful, failed or unphysical")] = None,
    task: Annotated[
        str | None, typer.Option(help="relax, static, stability, phonon, elastic, kappa, manifest, ...")
    ] = None,
    chemsys: Annotated[
        list[str] | None, typer.Option(help="chemical system, e.g. Ba-O-Ti (repeatable)")
    ] = None,
    element: Annotated[list[str] | None, typer.Option(help="must contain this element (repeatable)")] = None,
    where: Annotated[
        str | None, typer.Option(help='filter, e.g. "e_above_hull < 0.05" or "stability.e_above_hull < 0.05"')
    ] = None,
    sort: Annotated[
        str | None, typer.Option(help="sort by this field (-field: descending), e.g. e_above_hull")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many rows (0 = all)", min=0)] = None,
    join: Annotated[bool, typer.Option(help="one row per structure, columns per task (task.field)")] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    export: Annotated[
        Path | None,
        typer.Option(help="also write all columns to .csv/.json/.parquet (every match, or --limit)"),
    ] = None,
    export_structures: Annotated[
        Path | None,
        typer.Option(
            help="write the matching structures to this folder (one file each), or to one "
            "multi-frame FILE.extxyz with each row's fields in its frame info"
        ),
    ] = None,
    structure_format: Annotated[
        str | None, typer.Option(help="cif (default for a folder) or extxyz, for --export-structures")
    ] = None,
    uri: UriOption = None,
) -> None:
    """Print stored results; filter (--where), join per structure (--join), sort, export.

    Fields are named bare (e_above_hull) or as task.field (stability.e_above_hull); with
    --join, --where, --sort and --limit apply to the joined rows.
    """
    from mlipflows.errors import MlipflowsError
    from mlipflows.results import export_frame
    from mlipflows.selection import select_results
    from mlipflows.store import get_job_store

    if fmt not in ("table", "csv", "json"):
        raise typer.BadParameter("--format must be table, csv or json")
    if export is not None and export.suffix.lower() not in (".csv", ".json", ".parquet", ".pq"):
        raise typer.BadParameter("--export PATH must end in .csv, .json or .parquet")
    if structure_format not in (None, "cif", "extxyz"):
        raise typer.BadParameter("--structure-format must be cif or extxyz")
    one_file = export_structures is not None and export_structures.suffix.lower() in (".extxyz", ".xyz")
    if one_file and structure_format == "cif":
        raise typer.BadParameter(
            "--export-structures FILE.extxyz writes extxyz frames; drop --structure-format cif"
        )
    shown = TABLE_ROWS if limit is None and fmt == "table" and export is None else (limit or 0)
    # files get every match (or --limit), whatever the table shows
    writes_files = export is not None or export_structures is not None
    try:
        store = get_job_store(uri)
        sel = select_results(
            store,
            tag=tag,
            campaign=campaign,
            model=model,
            task=task,
            state=state,
            chemsys=chemsys,
            elements=element,
            where=where,
            sort=sort,
            limit=(limit or 0) if writes_files else shown,
            join=join,
            with_structures=export_structures is not None or (fmt == "json" and not join),
        )
    except MlipflowsError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    if sel.frame.empty:
        if fmt == "json":
            typer.echo("[]")  # `... --format json | jq` reads an empty list, not nothing
        wanted = {"task_type": task, "state": state, "model.name": model, "tags": tag}
        raise typer.Exit(_nothing(store, campaign, wanted))
    frame = sel.frame
    if export is not None:
        export_frame(frame, export)
        err_console.print(f"wrote {len(frame)} rows to {export}")
    if export_structures is not None:
        if one_file:
            written = _write_extxyz_file(sel, frame, export_structures)
            err_console.print(f"wrote {written} structures (extxyz frames) to {export_structures}")
        else:
            fmt_out = structure_format or "cif"
            written = _write_structures(sel, frame, export_structures, fmt_out)
            err_console.print(f"wrote {written} structures ({fmt_out}) to {export_structures}/")
    frame = frame.head(shown) if shown else frame
    if fmt == "table" and "structure" in frame:
        frame = frame.drop(columns=["structure"])
    print_results(frame, fmt, total=sel.total)


def _nothing(store: object, campaign: str | None, values: dict[str, str | None]) -> int:
    """Say why nothing matched: an unknown campaign, task, state or model (exit 2, with the
    nearest names in this store), or filters that match nothing together (exit 1)."""
    from mlipflows.campaign.status import list_campaigns
    from mlipflows.commands.campaign import unknown_campaign
    from mlipflows.selection import suggest
    from mlipflows.store import RESULTS

    if campaign and campaign not in {c["campaign"] for c in list_campaigns(store)}:  # type: ignore[arg-type]
        err_console.print(f"[red]error[/red] {unknown_campaign(store, campaign)}")
        return 2
    results = store.additional_stores[RESULTS]  # type: ignore[attr-defined]
    option = {"task_type": "--task", "state": "--state", "model.name": "--model", "tags": "--tag"}
    for field, value in values.items():
        if not value:
            continue
        known = set()
        for v in results.distinct(field):  # a list field may come back as lists
            known |= {str(x) for x in (v if isinstance(v, list) else [v]) if x is not None}
        wanted = value.split(",") if field == "task_type" else [value]
        for v in wanted:
            if known and v not in known:
                hint = suggest(v, known) or f" (here: {', '.join(sorted(known)[:10])})"
                err_console.print(
                    f"[red]error[/red] {option[field]} {v}: no result in this store has it{hint}"
                )
                return 2
    err_console.print("no results match")
    return 1


def _rows_with_structures(sel: object, frame: object) -> list[tuple[dict[str, Any], Any]]:
    """(row, pymatgen Structure) for every row that has a structure."""
    from pymatgen.core import Structure

    out = []
    for k, row in enumerate(frame.to_dict("records")):  # type: ignore[attr-defined]
        data = sel.structures.get(k)  # type: ignore[attr-defined]
        if data:
            out.append((row, Structure.from_dict(data)))
    return out


def _atoms(row: dict[str, Any], structure: Any) -> Any:
    """ASE Atoms (pymatgen has no extxyz writer; ASE's keeps cell and pbc) with the row's fields."""
    from pymatgen.io.ase import AseAtomsAdaptor

    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info = _info(row)
    return atoms


def _info(row: dict[str, Any]) -> dict[str, Any]:
    """Numbers, text and flags as they are, lists as JSON text; nested documents and empty
    values are left out (the frame keeps what a training set or a filter can use)."""
    import json
    import math

    import numpy as np

    info: dict[str, Any] = {}
    for key, value in row.items():
        value = value.item() if isinstance(value, np.generic) else value
        value = value.tolist() if isinstance(value, np.ndarray) else value
        if isinstance(value, float) and not math.isfinite(value):
            continue
        if isinstance(value, str) and value:
            info[str(key)] = " ".join(value.split())  # a newline would end the extxyz header line
        elif isinstance(value, bool | int | float):
            info[str(key)] = value
        elif isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
            info[str(key)] = json.dumps(list(value))
    return info


def _write_extxyz_file(sel: object, frame: object, path: Path) -> int:
    from ase.io import write

    frames = [_atoms(row, structure) for row, structure in _rows_with_structures(sel, frame)]
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, frames, format="extxyz")
    return len(frames)


def _write_structures(sel: object, frame: object, folder: Path, fmt: str) -> int:
    """One file per row that has a structure: ``<structure_id>[.<task>].cif|extxyz``."""
    folder.mkdir(parents=True, exist_ok=True)
    names: set[str] = set()
    written = 0
    for k, (row, structure) in enumerate(_rows_with_structures(sel, frame)):
        name = str(row.get("structure_id", k)).replace("/", "_")
        if name in names and row.get("task_type"):
            name = f"{name}.{row['task_type']}"
        while name in names:
            name += "_"
        names.add(name)
        if fmt == "cif":
            structure.to(filename=str(folder / f"{name}.cif"))
        else:
            from ase.io import write

            write(folder / f"{name}.extxyz", _atoms(row, structure), format="extxyz")
        written += 1
    return written


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(results)
