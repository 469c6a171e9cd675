"""`mlipflows rank` and `mlipflows bench ranking`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlipflows.commands.ui import UriOption, check_model, output_folder, positive
from mlipflows.home import reference_data


def parse_spacegroups(values: list[str] | None) -> list[int] | None:
    """``["225,227", "190-194"]`` → [225, 227, 190, 191, 192, 193, 194]; None for all groups."""
    if not values:
        return None
    out: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            lo, _, hi = part.partition("-")
            try:
                numbers = range(int(lo), int(hi or lo) + 1)
            except ValueError:
                raise typer.BadParameter(  # noqa: B904 (the ValueError says nothing more)
                    f"{part!r} is not a space-group number or range (e.g. 225 or 190-194)"
                )
            if not numbers:
                raise typer.BadParameter(f"{part!r} is a reversed range; write it low-high, e.g. 190-194")
            if not all(1 <= n <= 230 for n in numbers):
                raise typer.BadParameter(f"space groups are 1..230, got {part!r}")
            out.extend(numbers)
    return out


def rank(
    formula: Annotated[str, typer.Argument(help="reduced formula, e.g. TiO2")],
    model: Annotated[str, typer.Option(help="registry name, checkpoint path or pkg.module:factory")] = (
        "sevennet-0"
    ),
    n_random: Annotated[
        int, typer.Option(help="random symmetric crystals from PyXtal (0 = none)", min=0)
    ] = 100,
    spacegroups: Annotated[
        list[str] | None,
        typer.Option(help="space groups for random crystals: 225,227 or 190-194 (repeatable)"),
    ] = None,
    cif: Annotated[list[Path] | None, typer.Option(help="your own candidate file (repeatable)")] = None,
    seed: Annotated[int, typer.Option(help="seed of the random candidates (recorded)")] = 0,
    prototypes: Annotated[
        bool, typer.Option("--prototypes/--no-prototypes", help="include the prototype library")
    ] = True,
    fmax: Annotated[float, typer.Option(help="force convergence, eV/Å", callback=positive)] = 0.05,
    steps: Annotated[int, typer.Option(help="maximum FIRE steps", min=1)] = 1000,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    campaign: Annotated[str | None, typer.Option(help="campaign name stored with every result")] = None,
    out: Annotated[
        Path | None, typer.Option(help="folder for the table (csv) and E–V plot", callback=output_folder)
    ] = None,
    top: Annotated[int, typer.Option(help="rows to print (0 = all)", min=0)] = 20,
    include_unphysical: Annotated[
        bool, typer.Option(help="rank candidates that failed a sanity check too (flagged)")
    ] = False,
    second_opinion: Annotated[
        str | None, typer.Option(help="relax the lowest finalists again with this model and compare")
    ] = None,
    second_opinion_top: Annotated[int, typer.Option(help="finalists for the second opinion", min=0)] = 5,
    disagreement: Annotated[
        float, typer.Option(help="flag finalists whose ΔE differs by more than this, meV/atom")
    ] = 50.0,
    uri: UriOption = None,
) -> None:
    """Rank polymorphs of FORMULA: prototypes, random symmetric crystals and your files, batch-relaxed."""
    from mlipflows.commands.ui import err_console, open_store, run_with_progress
    from mlipflows.engine import RelaxSettings
    from mlipflows.errors import UnsupportedElementError
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.makers.ranking import RankingMaker
    from mlipflows.ranking import check_elements, generate
    from mlipflows.second_opinion import SecondOpinion

    groups = parse_spacegroups(spacegroups)
    potential = check_model(model, device)
    if second_opinion is not None:
        check_elements(formula, check_model(second_opinion, device))
    try:
        check_elements(formula, potential)
    except (UnsupportedElementError, ValueError) as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    gen = generate(formula, n_random, seed, groups, cif or [], prototypes=prototypes)
    for reason in gen.rejected_files:
        err_console.print(f"[red]error[/red] --cif {reason}: not ranked")
    if gen.misses_line():
        err_console.print(gen.misses_line())
    if not gen.candidates:
        err_console.print(f"[red]error[/red] no candidates for {formula}")
        raise typer.Exit(1)
    record = gen.record()
    pools = ", ".join(f"{n} {source}" for source, n in gen.counts().items())
    err_console.print(
        f"{formula}: {len(gen.candidates)} candidates ({pools}; seed {seed}), relaxing with {model}"
    )
    maker = RankingMaker(
        chunk=ChunkSettings(model=model, device=device, campaign=campaign, tags=["ranking"]),
        relax=RelaxSettings(fmax=fmax, max_steps=steps),
        include_unphysical=include_unphysical,
        second_opinion=None
        if second_opinion is None
        else SecondOpinion(second_opinion, top=second_opinion_top, threshold=disagreement / 1000),
    )
    cands = gen.candidates
    job = maker.make(
        formula,
        [c.structure for c in cands],
        [c.structure_id for c in cands],
        [c.source for c in cands],
        record,
    )
    store = open_store(uri)
    run_with_progress(job, len(cands), store)
    store.connect()
    doc = store.get_output(job.uuid, load=True)
    show_ranking(doc, model, top)
    if out is not None:
        write_ranking(doc, out, f"{doc['formula']}-{potential.name}")
    if gen.rejected_files:  # the user's own file was left out: the run is not what was asked
        raise typer.Exit(1)


def show_ranking(doc: dict[str, Any], model: str, top: int = 20) -> None:
    import pandas as pd

    from mlipflows.commands.ui import console, err_console

    frame = pd.DataFrame(doc["ranking"])
    if frame.empty:
        err_console.print(f"[red]no candidate relaxed[/red]: {doc.get('error')}")
        raise typer.Exit(1)
    cols = ["rank", "structure_id", "source", "spacegroup", "delta_e_mev_per_atom", "energy_per_atom"]
    cols += ["volume_per_atom", "density", "nsites", "converged", "n_duplicates"]
    shown = frame[cols].head(top) if top else frame[cols]
    from rich.table import Table

    table = Table(title=f"{doc['formula']} with {model}: {doc['n_unique']} distinct of {doc['n_candidates']}")
    heads = ["#", "id", "source", "space group", "ΔE (meV/atom)", "E (eV/atom)", "V (Å³/atom)", "ρ (g/cm³)"]
    for h in [*heads, "sites", "conv.", "dup."]:
        table.add_column(h)
    for row in shown.itertuples(index=False):
        table.add_row(*[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row])
    console.print(table)
    flagged = frame[frame["unphysical"].notna()] if "unphysical" in frame else frame.iloc[:0]
    for row in flagged.itertuples(index=False):
        err_console.print(f"[red]ranked although unphysical[/red] {row.structure_id}: {row.unphysical}")
    bad = doc.get("unphysical", [])
    if bad:
        console.print(f"{len(bad)} unphysical candidates (model holes), left out of the ranking:")
        for f in bad:
            energy = f.get("energy_per_atom")
            shown_e = "" if energy is None else f" ({energy:.4g} eV/atom)"
            console.print(f"  [red]unphysical[/red] {f['structure_id']}{shown_e}: {f['error']}")
    for f in doc.get("failed", []):
        err_console.print(f"[yellow]failed[/yellow] {f['structure_id']}: {f['error']}")
    opinions = doc.get("second_opinion") or []
    if opinions:
        second = Table(title=f"second opinion: {doc['second_opinion_model']} on the lowest {len(opinions)}")
        for h in ("id", f"ΔE {model} (meV/atom)", "ΔE second (meV/atom)", "B − A", "verdict"):
            second.add_column(h)
        for o in opinions:
            b = o.get("value_b")
            second.add_row(
                o["structure_id"],
                f"{1000 * o['value_a']:.1f}",
                "" if b is None else f"{1000 * b:.1f}",
                "" if o.get("difference") is None else f"{1000 * o['difference']:+.1f}",
                ("[red]disagree[/red] " + (o.get("error_b") or "") if o["disagrees"] else "agree"),
            )
        console.print(second)


def write_ranking(doc: dict[str, Any], out: Path, stem: str) -> None:
    """The table (CSV), the E–V plot and every ranked polymorph's relaxed structure (CIF)."""
    import pandas as pd
    from pymatgen.core import Structure

    from mlipflows.commands.ui import err_console
    from mlipflows.ranking import energy_volume_plot

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(doc["ranking"])
    frame.to_csv(out / f"{stem}.csv", index=False)
    energy_volume_plot(
        frame, f"{doc['formula']} ({doc['model']['name']}, seed {doc['seed']})", out / f"{stem}-EV.png"
    )
    folder = out / f"{stem}-structures"
    folder.mkdir(exist_ok=True)
    structures = doc.get("structures") or {}
    for row in doc["ranking"]:
        data = structures.get(row["structure_id"])
        if data:
            name = f"{row['rank']:03d}-{row['spacegroup']}-{row['structure_id']}.cif".replace("/", "_")
            Structure.from_dict(data).to(filename=str(folder / name))
    err_console.print(
        f"wrote {out}/{stem}.csv, {stem}-EV.png and {len(structures)} structures in {folder.name}/"
    )


def bench_ranking(
    model: Annotated[str, typer.Option(help="model spec")] = "sevennet-0",
    n_random: Annotated[int, typer.Option(help="random PyXtal candidates per system besides prototypes")] = 0,
    seed: Annotated[int, typer.Option(help="seed of the random candidates")] = 0,
    si_data: Annotated[Path, typer.Option(help="Si8.json.gz (PyXtal_FF Si polymorphs) or its folder")] = Path(
        "../shared/data/pyxtal-si-polymorphs"
    ),
    si_limit: Annotated[int | None, typer.Option(help="seeded sample of the Si polymorphs", min=1)] = None,
    skip_si: Annotated[bool, typer.Option(help="only the ground-state recovery part")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto")] = "cpu",
    out: Annotated[Path, typer.Option(help="folder for tables, metrics and plots")] = Path(
        "analysis/ranking"
    ),
    uri: UriOption = None,
) -> None:
    """(a) ground-state recovery on 12 known systems; (b) Si8 polymorph energy order vs DFT."""
    import json

    from jobflow import Flow

    from mlipflows.bench.ranking import KNOWN_SYSTEMS, recovery_table
    from mlipflows.commands.ui import console, err_console, open_store, run_with_progress
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.makers.ranking import RankingMaker
    from mlipflows.ranking import generate

    potential = check_model(model, device)
    out.mkdir(parents=True, exist_ok=True)
    jobs, n_structures = [], 0
    maker = RankingMaker(
        chunk=ChunkSettings(model=model, device=device, campaign="bench-ranking", tags=["benchmark"])
    )
    for system in KNOWN_SYSTEMS:
        missing = potential.unsupported_elements(set(_elements(system.formula)))
        if missing:
            err_console.print(
                f"[yellow]skipped[/yellow] {system.formula}: {model} lacks {', '.join(missing)}"
            )
            continue
        gen = generate(system.formula, n_random, seed)
        c = gen.candidates
        jobs.append(
            maker.make(
                system.formula,
                [x.structure for x in c],
                [x.structure_id for x in c],
                [x.source for x in c],
                gen.record(),
            )
        )
        n_structures += len(c)
    store = open_store(uri)
    err_console.print(f"{len(jobs)} systems, {n_structures} candidates → {model}")
    run_with_progress(Flow(jobs), n_structures, store, len(jobs))
    store.connect()
    docs = {d["formula"]: d for d in (store.get_output(j.uuid, load=True) for j in jobs)}
    table = recovery_table(docs)
    stem = f"{potential.name}-recovery"
    table.to_csv(out / f"{stem}.csv", index=False)
    hits = int(table["top1_hit"].sum())
    summary: dict[str, Any] = {
        "model": model,
        "checksum": potential.card.checksum,
        "n_random": n_random,
        "seed": seed,
        "ground_state_recovery": {"n_systems": len(table), "top1_hits": hits, "top1_rate": hits / len(table)},
    }
    for doc in docs.values():
        write_ranking(doc, out / "systems", f"{doc['formula']}-{potential.name}")
    console.print(table.drop(columns=["note"]).to_string(index=False))
    console.print(f"top-1 ground-state recovery: {hits}/{len(table)}")
    if not skip_si:
        summary["si_polymorphs"] = _si_part(potential, reference_data(si_data), si_limit, seed, out)
    (out / f"{potential.name}-metrics.json").write_text(json.dumps(summary, indent=2))
    console.print(f"wrote {out}/{stem}.csv, {potential.name}-metrics.json")


def _elements(formula: str) -> list[str]:
    from pymatgen.core import Composition

    return [el.symbol for el in Composition(formula).elements]


def _si_part(potential: Any, path: Path, limit: int | None, seed: int, out: Path) -> dict[str, Any]:
    from mlipflows.bench.ranking import si_polymorph_benchmark
    from mlipflows.commands.ui import console, err_console
    from mlipflows.errors import DataNotFoundError

    try:
        metrics = si_polymorph_benchmark(potential, path, limit, seed, out)
    except DataNotFoundError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"Si polymorphs (n={metrics['n']}, {metrics['n_failed']} without a value, of which "
        f"{metrics['n_unphysical_excluded']} unphysical): "
        f"Spearman ρ {metrics['spearman_rho']:.3f}  Kendall τ {metrics['kendall_tau']:.3f}  "
        f"MAE of E − E(DFT GS) {1000 * metrics['mae_relative_ev_per_atom']:.0f} meV/atom "
        f"(median {1000 * metrics['median_ae_relative_ev_per_atom']:.0f}); within "
        f"{metrics['window_ev_per_atom']} eV/atom of the DFT GS (n={metrics['n_within_window']}): "
        f"MAE {1000 * metrics['mae_relative_within_window_ev_per_atom']:.0f} meV/atom, "
        f"ρ {metrics['spearman_rho_within_window']:.3f}; "
        f"{metrics['n_below_ground_state']} structures > 50 meV/atom below the DFT GS"
    )
    return metrics


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command()(rank)
    bench.command("ranking")(bench_ranking)
