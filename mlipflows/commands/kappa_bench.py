"""`mlipflows bench kappa`: the κ_SRME benchmark (protocol phonondb-v2, the k_SRME code's)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from mlipflows.commands.ui import UriOption, check_model


def kappa(
    model: Annotated[str, typer.Option(help="model spec")] = "sevennet-l3i5",
    data: Annotated[Path, typer.Option(help="folder with the phononDB extxyz and κ json.gz")] = Path(
        "../shared/data/phonondb-kappa103"
    ),
    limit: Annotated[int | None, typer.Option(help="the N cheapest materials")] = None,
    ids: Annotated[list[str] | None, typer.Option(help="mp-ids or formulas (repeatable)")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    batch_atoms: Annotated[int | None, typer.Option(help="atoms per batched model call")] = None,
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
) -> None:
    """κ_SRME, κ_SRE, κ_SRD vs phononDB PBE (resumable: reuses stored κ of the same weights)."""
    import phono3py

    from mlipflows.bench.kappa import (
        PROTOCOL,
        PROTOCOL_DISPLACEMENT,
        evaluate,
        load_phonondb,
        protocol_maker,
        stored_documents,
    )
    from mlipflows.commands.ui import console, err_console, run_with_progress
    from mlipflows.errors import DataNotFoundError
    from mlipflows.metrics.phonons import aggregate
    from mlipflows.store import get_job_store

    standard = displacement == PROTOCOL_DISPLACEMENT
    if limit is not None and ids:
        raise typer.BadParameter("give --limit or --ids, not both")
    try:
        records = load_phonondb(data, limit, ids)
    except DataNotFoundError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    if not records:
        wanted = " ".join(ids or [])
        err_console.print(f"[red]error[/red] no phononDB material in {data} matches --ids {wanted}")
        raise typer.Exit(2)
    store = get_job_store(uri)
    potential = check_model(model, device, dtype)
    done = stored_documents(store, potential.card.checksum, displacement)
    todo = [r for r in records if r.material_id not in done]
    err_console.print(f"{len(records)} phononDB materials, {len(todo)} to run with {model}")
    maker = protocol_maker(model, device, dtype, batch_atoms, displacement)
    t0 = time.perf_counter()
    for r in todo:  # one job per material: each is stored as soon as it finishes
        job = maker.make([r.structure], [r.material_id], [r.fc3_supercell], [r.fc2_supercell], [r.q_mesh])
        job.name = f"kappa {r.material_id} {r.name}"
        err_console.print(
            f"{r.material_id} {r.name}: fc3 {r.fc3_supercell}, fc2 {r.fc2_supercell}, mesh {r.q_mesh}"
        )
        run_with_progress(job, 1, store)
    if todo:
        done = stored_documents(store, potential.card.checksum, displacement)
    frame = evaluate(records, done)
    metrics = aggregate(frame.to_dict("records"))
    metrics.update(
        {
            "model": model,
            "checksum": potential.card.checksum,
            "protocol": PROTOCOL if standard else f"{PROTOCOL}, displacement {displacement} Å",
            "phono3py": phono3py.__version__,
            "transport": "phono3py smm19 (Wigner, κ_P + κ_C)",
            "displacement": displacement,
            "device": device,
            "dtype": dtype,
            "run_wall_s": round(time.perf_counter() - t0, 1),
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{potential.name}-n{len(records)}" + ("" if standard else f"-d{displacement:g}")
    stem += "" if dtype == "float32" else f"-{dtype}"
    frame.to_csv(out / f"{stem}.csv", index=False)
    (out / f"{stem}-metrics.json").write_text(json.dumps(metrics, indent=2))
    shown = frame[["material_id", "formula", "kappa_dft", "kappa_pred", "srd", "srme", "srme_reason"]]
    console.print(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    console.print(
        f"{potential.name} on {metrics['n_materials']} materials: κ_SRME {metrics['kappa_srme']:.3f}  "
        f"κ_SRE {metrics['kappa_sre']:.3f}  κ_SRD {metrics['kappa_srd']:+.3f}  "
        f"failure rate {metrics['failure_rate']:.2f}\nwrote {out}/{stem}.csv, -metrics.json"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("kappa")(kappa)
