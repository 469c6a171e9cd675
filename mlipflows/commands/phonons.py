"""`mlipflows phonons` and `mlipflows kappa`: one chunk job over the given structure files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from mlipflows.commands.ui import (
    JsonOption,
    TagOption,
    UriOption,
    explicit,
    output_path,
    positive,
    write_documents,
)
from mlipflows.engine.symmetry import DEFAULT_SYMPREC

ModelOption = Annotated[str, typer.Option(help="registry name, checkpoint path or pkg.module:factory")]
DeviceOption = Annotated[str, typer.Option(help="cpu, cuda or auto")]


def _dtype(value: str) -> str:
    if value not in ("float32", "float64"):
        raise typer.BadParameter(f"float32 or float64, not {value!r}")
    return value


def _temperatures(values: list[float] | None) -> list[float] | None:
    bad = [t for t in values or [] if not t > 0]
    if bad:
        raise typer.BadParameter(f"temperatures are > 0 K (got {', '.join(f'{t:g}' for t in bad)})")
    return values


DtypeOption = Annotated[
    str,
    typer.Option(help="float32 or float64 (finite differences of float32 forces are noisy)", callback=_dtype),
]
BatchAtomsOption = Annotated[
    int | None,
    typer.Option(help="atoms per batched model call (default: the engine's; lower it to save memory)", min=1),
]
NoRelaxOption = Annotated[bool, typer.Option("--no-relax", help="use the structures as given")]
FmaxOption = Annotated[float, typer.Option(help="symmetric relaxation threshold, eV/Å", callback=positive)]
SymprecOption = Annotated[
    float,
    typer.Option(
        help="symmetry tolerance, Å, as for every command (raise it, e.g. 0.1, for a noisy input)",
        callback=positive,
    ),
]
DisplacementOption = Annotated[float, typer.Option(help="Å", callback=positive)]


def _ints(text: str | None, name: str) -> list[int] | None:
    """'2 2 2' or '2,2,2' → [2, 2, 2] (three integers, or nine for a full matrix)."""
    if text is None:
        return None
    try:
        values = [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise typer.BadParameter(f"{name} takes integers, got {text!r}") from None
    if len(values) not in (3, 9):
        raise typer.BadParameter(f"{name} takes 3 (diagonal) or 9 integers, got {len(values)}")
    if len(values) == 3:
        if min(values) < 1:
            raise typer.BadParameter(f"{name} takes integers ≥ 1, got {text!r}")
        return values
    import numpy as np

    matrix = [values[0:3], values[3:6], values[6:9]]
    if round(float(np.linalg.det(matrix))) < 1:
        raise typer.BadParameter(f"{name}: the matrix {text!r} has no positive determinant")
    return matrix  # type: ignore[return-value]


def _run(files: list[Path], maker: Any, uri: str | None) -> tuple[list[dict], dict[str, str]]:
    """Read the files, run the maker's job into the store, return the stored documents."""
    from mlipflows.commands.ui import check_model, err_console, open_store, run_with_progress
    from mlipflows.io import read_many
    from mlipflows.store import describe_store

    check_model(maker.chunk.model, maker.chunk.device, maker.chunk.dtype)  # before any work
    loaded, failed = read_many(files)
    for reason in failed.values():
        err_console.print(f"[red]error[/red] {reason}")
    warn_symmetry(loaded, maker.symprec)
    if not loaded:
        return [], failed
    store = open_store(uri)
    job = maker.make([x.structure for x in loaded], [x.structure_id for x in loaded])
    err_console.print(f"{len(loaded)} structures, {maker.chunk.model} → {describe_store(store)}")
    run_with_progress(job, len(loaded), store)
    store.connect()
    return store.get_output(job.uuid, load=True), failed


PHONON_SYMMETRY_LOSS = (
    "else it is relaxed without symmetry constraints and, unless it relaxes back to the symmetric "
    "structure, every displacement of the low-symmetry cell is computed"
)


def warn_symmetry(loaded: list[Any], symprec: float, consequence: str = PHONON_SYMMETRY_LOSS) -> None:
    """Loudly, for every input that only a looser tolerance finds symmetric."""
    from mlipflows.commands.ui import err_console
    from mlipflows.engine.symmetry import symmetry_hint

    for item in loaded:
        hint = symmetry_hint(item.structure, symprec, consequence)
        if hint:
            err_console.print(f"[bold yellow]warning[/bold yellow] {item.structure_id} {hint}")


def _table(rows: list[dict[str, Any]], title: str) -> None:
    from rich.table import Table

    from mlipflows.commands.ui import console

    table = Table(title=title)
    for col in rows[0] if rows else []:
        table.add_column(col)
    for row in rows:
        table.add_row(
            *["" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()]
        )
    console.print(table)


def phonons(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files, or folders of them")],
    model: ModelOption = "sevennet-0",
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    min_length: Annotated[
        float,
        typer.Option(
            help="smallest supercell width, Å (imaginary-mode verdicts need ≥ 15: README)", callback=positive
        ),
    ] = 12.0,
    supercell: Annotated[
        str | None, typer.Option(help="supercell matrix, e.g. '3 3 3' (instead of --min-length)")
    ] = None,
    displacement: DisplacementOption = 0.01,
    no_relax: NoRelaxOption = False,
    fmax: FmaxOption = 1e-4,
    symprec: SymprecOption = DEFAULT_SYMPREC,
    max_atoms: Annotated[int, typer.Option(help="largest supercell accepted", min=1)] = 600,
    batch_atoms: BatchAtomsOption = None,
    plot: Annotated[
        Path | None, typer.Option(help="band structure + DOS figure (PNG)", callback=output_path)
    ] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign name stored with every result")] = None,
    tag: TagOption = None,
    json_out: JsonOption = None,
    uri: UriOption = None,
) -> None:
    """Harmonic phonons: band structure, DOS, F/S/C_v(T), imaginary-mode check; results stored."""
    from mlipflows.makers import PhononMaker, phonon_relax_settings
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.phonons.plots import plot_bands_dos

    if supercell is not None and explicit(ctx, "min_length"):
        raise typer.BadParameter("give --supercell or --min-length, not both", param_hint="--supercell")
    maker = PhononMaker(
        chunk=ChunkSettings(
            model=model, device=device, dtype=dtype, campaign=campaign, max_atoms=batch_atoms, tags=tag or []
        ),
        relax=None if no_relax else phonon_relax_settings(fmax=fmax),
        supercell_matrix=_ints(supercell, "--supercell"),
        min_length=min_length,
        max_supercell_atoms=max_atoms,
        displacement=displacement,
        symprec=symprec,
    )
    docs, failed = _run(files, maker, uri)
    rows = []
    for d in docs:
        i300 = (
            d["temperatures"].index(300.0) if d.get("temperatures") and 300.0 in d["temperatures"] else None
        )
        rows.append(
            {
                "structure": d["structure_id"],
                "formula": d["formula_pretty"],
                "state": d["state"],
                "space group": d["setup"].get("spacegroup_after"),
                "supercell atoms": d["setup"]["n_supercell_atoms"],
                "displacements": d["setup"]["n_displacements"],
                "min THz": d.get("min_frequency"),
                "max THz": d.get("max_frequency"),
                "imaginary": d.get("has_imaginary_modes"),
                "C_v(300 K) J/K/mol": None if i300 is None else d["heat_capacity"][i300],
                "C_v(300 K) J/K/mol-atom": None if i300 is None else d["heat_capacity_per_atom"][i300],
                "note": d.get("error") or "; ".join(d.get("warnings", [])),
            }
        )
    _table(rows, f"phonons with {model} (frequencies THz; C_v per primitive cell and per atom)")
    if plot is not None:
        for d in docs:
            if d.get("band_structure"):
                path = (
                    plot
                    if len(docs) == 1
                    else plot.with_name(f"{plot.stem}-{d['structure_id']}{plot.suffix}")
                )
                path.parent.mkdir(parents=True, exist_ok=True)
                plot_bands_dos(d, path)
                typer.echo(f"wrote {path}")
            else:
                typer.echo(f"no plot for {d['structure_id']}: its phonons {d['state']} (see the table)")
    if json_out is not None and docs:
        write_documents(json_out, docs)
    raise typer.Exit(1 if failed or not docs or any(d["state"] != "successful" for d in docs) else 0)


def kappa(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="CIF / POSCAR / extxyz files, or folders of them")],
    model: ModelOption = "sevennet-0",
    device: DeviceOption = "cpu",
    dtype: DtypeOption = "float32",
    temperatures: Annotated[
        list[float] | None, typer.Option(help="K (repeatable; default 300)", callback=_temperatures)
    ] = None,
    mesh: Annotated[str, typer.Option(help="q-mesh, e.g. '11 11 11'")] = "11 11 11",
    fc3_supercell: Annotated[str | None, typer.Option(help="fc3 supercell, e.g. '2 2 2'")] = None,
    fc2_supercell: Annotated[str | None, typer.Option(help="fc2 supercell (default: the fc3 one)")] = None,
    fc3_min_length: Annotated[
        float, typer.Option(help="smallest fc3 supercell width, Å", callback=positive)
    ] = 8.0,
    displacement: Annotated[float, typer.Option(help="Å (phono3py's default)", callback=positive)] = 0.03,
    rta: Annotated[bool, typer.Option("--rta", help="particle (Peierls) RTA only, no Wigner κ_C")] = False,
    no_isotope: Annotated[bool, typer.Option("--no-isotope", help="without isotope scattering")] = False,
    no_relax: NoRelaxOption = False,
    fmax: FmaxOption = 1e-4,
    symprec: SymprecOption = DEFAULT_SYMPREC,
    max_atoms: Annotated[int, typer.Option(help="largest supercell accepted", min=1)] = 300,
    batch_atoms: BatchAtomsOption = None,
    plot: Annotated[Path | None, typer.Option(help="κ(T) figure (PNG)", callback=output_path)] = None,
    campaign: Annotated[str | None, typer.Option(help="campaign name stored with every result")] = None,
    tag: TagOption = None,
    json_out: JsonOption = None,
    uri: UriOption = None,
) -> None:
    """Lattice thermal conductivity (phono3py; Wigner κ_P + κ_C, W/m·K); results stored."""
    from mlipflows.makers import KappaMaker, phonon_relax_settings
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.phonons.plots import plot_kappa

    q_mesh = _ints(mesh, "--mesh")
    if q_mesh is None or isinstance(q_mesh[0], list):
        raise typer.BadParameter("--mesh takes three integers")
    if fc3_supercell is not None and explicit(ctx, "fc3_min_length"):
        raise typer.BadParameter(
            "give --fc3-supercell or --fc3-min-length, not both", param_hint="--fc3-supercell"
        )
    maker = KappaMaker(
        chunk=ChunkSettings(
            model=model, device=device, dtype=dtype, campaign=campaign, max_atoms=batch_atoms, tags=tag or []
        ),
        relax=None if no_relax else phonon_relax_settings(fmax=fmax),
        fc3_supercell_matrix=_ints(fc3_supercell, "--fc3-supercell"),
        fc2_supercell_matrix=_ints(fc2_supercell, "--fc2-supercell"),
        fc3_min_length=fc3_min_length,
        displacement=displacement,
        mesh=q_mesh,  # type: ignore[arg-type]
        temperatures=temperatures or [300.0],
        transport="rta" if rta else "wigner",
        isotope=not no_isotope,
        max_supercell_atoms=max_atoms,
        symprec=symprec,
    )
    docs, failed = _run(files, maker, uri)
    rows = []
    for d in docs:
        for k, t in enumerate(d.get("temperatures") or []):
            ok = d.get("kappa_tot_avg") is not None
            rows.append(
                {
                    "structure": d["structure_id"],
                    "formula": d["formula_pretty"],
                    "state": d["state"],
                    "T (K)": t,
                    "κ_P": float(sum(d["kappa_p_rta"][k][:3]) / 3) if ok else None,
                    "κ_C": float(sum(d["kappa_c"][k][:3]) / 3) if ok else None,
                    "κ_TOT": d["kappa_tot_avg"][k] if ok else None,
                    "imaginary": d.get("has_imaginary_modes"),
                    "note": d.get("error") or "; ".join(d.get("warnings", [])),
                }
            )
    _table(rows, f"κ with {model} (W/m·K, mean of xx, yy, zz; mesh {maker.mesh})")
    with_kappa = [d for d in docs if d.get("kappa_tot_avg")]
    if plot is not None and with_kappa:
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_kappa(with_kappa, plot)
        typer.echo(f"wrote {plot}")
    elif plot is not None:
        typer.echo(f"no plot written to {plot}: no structure has a κ (see the table)")
    if json_out is not None and docs:
        write_documents(json_out, docs)
    raise typer.Exit(1 if failed or not docs or any(d["state"] != "successful" for d in docs) else 0)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.command("phonons")(phonons)
    app.command("kappa")(kappa)
