"""`mlipflows bench formation-energy`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from mlipflows.commands.ui import UriOption, check_model
from mlipflows.home import reference_data


def formation_energy(
    model: Annotated[str, typer.Option(help="model spec")] = "sevennet-0",
    data: Annotated[Path, typer.Option(help="WBM json.gz (or its folder)")] = Path(
        "../shared/data/matcalc-benchmarks"
    ),
    limit: Annotated[int | None, typer.Option(help="seeded random sample of this many", min=1)] = None,
    seed: Annotated[int, typer.Option(help="sample seed")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    chunk_size: Annotated[int, typer.Option(help="structures per job", min=1)] = 64,
    out: Annotated[Path, typer.Option(help="folder for the table, metrics and plot")] = Path(
        "analysis/formation_energy"
    ),
    uri: UriOption = None,
    only_stored: Annotated[
        bool, typer.Option(help="relax nothing: score the structures already stored (interim numbers)")
    ] = False,
) -> None:
    """Formation-energy MAE/RMSE/R² vs DFT on WBM structures (resumable: reuses stored relaxations)."""
    from mlipflows.bench.formation import (
        CAMPAIGN,
        evaluate,
        load_wbm,
        parity_plot,
        stored_documents,
        summarize,
    )
    from mlipflows.commands.ui import console, err_console, open_store, run_with_progress
    from mlipflows.engine import RelaxSettings
    from mlipflows.errors import DataNotFoundError
    from mlipflows.makers import RelaxMaker, relax_flow
    from mlipflows.makers.base import ChunkSettings

    try:
        records = load_wbm(reference_data(data), limit, seed)
    except DataNotFoundError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    store = open_store(uri)
    potential = check_model(model, device)
    done = stored_documents(store, potential.card.checksum)
    todo = [r for r in records if r.material_id not in done]
    err_console.print(f"{len(records)} WBM structures, {len(todo)} to relax with {model}")
    if only_stored:
        records = [r for r in records if r.material_id in done]
        err_console.print(f"--only-stored: scoring the {len(records)} already relaxed")
        if not records:
            err_console.print(f"[red]error[/red] nothing stored yet for {model}; run without --only-stored")
            raise typer.Exit(1)
    elif todo:
        maker = RelaxMaker(
            chunk=ChunkSettings(model=model, device=device, campaign=CAMPAIGN, tags=["benchmark"]),
            relax=RelaxSettings(fmax=0.05, max_steps=500),
        )
        flow = relax_flow(
            [r.structure for r in todo],
            [r.material_id for r in todo],
            chunk_size=chunk_size,
            maker=maker,
        )
        run_with_progress(flow, len(todo), store, len(flow.jobs))
        done = stored_documents(store, potential.card.checksum)
    frame = evaluate(records, done)
    metrics = summarize(frame)
    metrics.update(
        {
            "model": model,
            "checksum": potential.card.checksum,
            "limit": limit,
            "seed": seed,
            "only_stored": only_stored,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{potential.name}-n{len(records)}"
    frame.to_csv(out / f"{stem}.csv", index=False)
    (out / f"{stem}-metrics.json").write_text(json.dumps(metrics, indent=2))
    parity_plot(frame, potential.name, metrics, out / f"{stem}-parity.png")
    m = metrics["vs_dft_mp2023_refs"]
    d = metrics["vs_dft_dataset"]
    console.print(
        f"{potential.name} on {len(records)} WBM structures ({metrics['n_failed']} failed, "
        f"{metrics['n_unphysical_excluded']} unphysical and excluded, {metrics['n_not_run']} not run, "
        f"{metrics['n_not_converged']} not converged)\n"
        f"  vs DFT (MP 2023 refs): MAE {m['MAE']:.4f}  RMSE {m['RMSE']:.4f} eV/atom  R² {m['R2']:.4f}\n"
        f"  vs dataset E_form:     MAE {d['MAE']:.4f}  RMSE {d['RMSE']:.4f} eV/atom  R² {d['R2']:.4f}\n"
        f"wrote {out}/{stem}.csv, -metrics.json, -parity.png"
    )


def register(app: typer.Typer, bench: typer.Typer) -> None:
    bench.command("formation-energy")(formation_energy)
