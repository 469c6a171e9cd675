"""`mlipflows bench kappa`: the κ_SRME benchmark (protocol phonondb-v3, the k_SRME code's)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from mlipflows.commands.ui import UriOption, check_model
from mlipflows.home import reference_data


def kappa(
    model: Annotated[str, typer.Option(help="model spec")] = "sevennet-l3i5",
    data: Annotated[Path, typer.Option(help="folder with the phononDB extxyz and κ json.gz")] = Path(
        "../shared/data/phonondb-kappa103"
    ),
    limit: Annotated[int | None, typer.Option(help="the N cheapest materials", min=1)] = None,
    ids: Annotated[list[str] | None, typer.Option(help="mp-ids or formulas (repeatable)")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    batch_atoms: Annotated[int | None, typer.Option(help="atoms per batched model call", min=1)] = None,
    out: Annotated[Path, typer.Option(help="folder for the per-material table and metrics")] = Path(
        "analysis/kappa"
    ),
    uri: UriOption = None,
    dtype: Annotated[
        str, typer.Option(help="float32 or float64 (SevenNet supports both; see analysis/kappa)")
    ] = "float32",
    displacement: Annotated[
        float, typer.Option(help="Å; the protocol's 0.03 by default (see analysis/kappa)")
    ] = 0.03,
    from_table: Annotated[
        list[Path] | None,
        typer.Option(
            help="an earlier table of this command (repeatable): its materials are not run again, "
            "when its -metrics.json has the same weights, protocol, displacement, dtype and κ code"
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="K/N: only the K-th of N interleaved shards of the selected materials (one per machine; "
            "combine their tables with --from-table)"
        ),
    ] = None,
    stored_only: Annotated[
        bool,
        typer.Option(help="compute nothing: write the table of the selected materials that have a result"),
    ] = False,
) -> None:
    """κ_SRME, κ_SRE, κ_SRD vs phononDB PBE (resumable: reuses stored κ of the same weights)."""
    import phono3py

    from mlipflows.bench.kappa import (
        NOT_RUN_REASON,
        PROTOCOL,
        PROTOCOL_DISPLACEMENT,
        TRANSPORT,
        evaluate,
        load_phonondb,
        merge_table_rows,
        parity_plot,
        parse_shard,
        protocol_maker,
        shard_of,
        stored_documents,
        table_rows,
    )
    from mlipflows.commands.ui import console, err_console, open_store, run_with_progress
    from mlipflows.errors import DataNotFoundError, TableMismatchError
    from mlipflows.metrics.phonons import aggregate

    standard = displacement == PROTOCOL_DISPLACEMENT
    if limit is not None and ids:
        raise typer.BadParameter("give --limit or --ids, not both")
    try:
        records = load_phonondb(reference_data(data), limit, ids)
    except DataNotFoundError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    if not records:
        wanted = " ".join(ids or [])
        err_console.print(f"[red]error[/red] no phononDB material in {data} matches --ids {wanted}")
        raise typer.Exit(2)
    if shard is not None:
        try:
            shard_k, shard_n = parse_shard(shard)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None
        if len(records) < shard_n:
            err_console.print(
                f"[red]error[/red] {shard_n} shards of {len(records)} materials: some would be empty"
            )
            raise typer.Exit(2)
        records = shard_of(records, shard_k, shard_n)
    store = open_store(uri)
    potential = check_model(model, device, dtype)
    settings = {
        "model": model,
        "checksum": potential.card.checksum,
        "protocol": PROTOCOL if standard else f"{PROTOCOL}, displacement {displacement} Å",
        "phono3py": phono3py.__version__,
        "transport": TRANSPORT,
        "displacement": displacement,
        "dtype": dtype,
    }
    try:
        reused = table_rows(from_table or [], settings)
    except TableMismatchError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    done = stored_documents(store, potential.card.checksum, displacement)
    reused = {mp_id: row for mp_id, row in reused.items() if mp_id not in done}
    todo = [r for r in records if r.material_id not in done and r.material_id not in reused]
    n_reused = sum(r.material_id in reused for r in records)
    err_console.print(
        f"{len(records)} phononDB materials: {len(records) - len(todo) - n_reused} stored, "
        f"{n_reused} from earlier tables, {len(todo)} "
        + ("not run (--stored-only)" if stored_only else f"to run with {model}")
    )
    to_run = [] if stored_only else todo
    maker = protocol_maker(model, device, dtype, batch_atoms, displacement)
    t0 = time.perf_counter()
    for r in to_run:  # one job per material: each is stored as soon as it finishes
        job = maker.make([r.structure], [r.material_id], [r.fc3_supercell], [r.fc2_supercell], [r.q_mesh])
        job.name = f"kappa {r.material_id} {r.name}"
        err_console.print(
            f"{r.material_id} {r.name}: fc3 {r.fc3_supercell}, fc2 {r.fc2_supercell}, mesh {r.q_mesh}"
        )
        run_with_progress(job, 1, store)
    if to_run:
        done = stored_documents(store, potential.card.checksum, displacement)
    frame, n_from_tables = merge_table_rows(evaluate(records, done), reused)
    if stored_only:
        frame = frame[frame["srme_reason"] != NOT_RUN_REASON].reset_index(drop=True)
        if frame.empty:
            err_console.print(
                "[red]error[/red] none of the selected materials has a result yet: nothing to write"
            )
            raise typer.Exit(1)
    metrics = aggregate(frame.to_dict("records"))
    metrics.update(settings)
    metrics.update(
        {
            "device": device,
            "from_tables": [str(p) for p in from_table or []],
            "n_from_tables": n_from_tables,
            "run_wall_s": round(time.perf_counter() - t0, 1),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{potential.name}-n{len(frame)}" + ("" if standard else f"-d{displacement:g}")
    stem += "" if dtype == "float32" else f"-{dtype}"
    stem += "" if shard is None else f"-shard{shard_k}of{shard_n}"  # shards may share one output folder
    if (out / f"{stem}.csv").resolve() in {Path(p).expanduser().resolve() for p in from_table or []}:
        err_console.print(
            f"[red]error[/red] {out / stem}.csv is one of the --from-table inputs (nothing new to add?); "
            "write the combined table to another --out"
        )
        raise typer.Exit(2)
    frame.to_csv(out / f"{stem}.csv", index=False)
    (out / f"{stem}-metrics.json").write_text(json.dumps(metrics, indent=2))
    parity_plot(frame, potential.name, metrics, out / f"{stem}-parity.png")
    shown = frame[["material_id", "formula", "kappa_dft", "kappa_pred", "srd", "srme", "srme_reason"]]
    console.print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    console.print(
        f"{potential.name} on {metrics['n_materials']} materials: κ_SRME {metrics['kappa_srme']:.3f}  "
        f"κ_SRE {metrics['kappa_sre']:.3f}  κ_SRD {metrics['kappa_srd']:+.3f}  "
        f"failure rate {metrics['failure_rate']:.2f}\nwrote {out}/{stem}.csv, -metrics.json, -parity.png"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("kappa")(kappa)
