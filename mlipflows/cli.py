"""The ``mlipflows`` command line (typer + rich); each area's commands live in ``commands/``."""

from __future__ import annotations

from typing import Annotated

import typer

from mlipflows.commands.ui import (  # noqa: F401 (re-exported for scripts and tests)
    EXAMPLES,
    console,
    err_console,
    print_results,
    run_with_progress,
)

app = typer.Typer(
    help="High-throughput materials screening with machine-learned potentials.",
    no_args_is_help=True,
)
bench_app = typer.Typer(
    help="Reproduce materials benchmarks (Matbench Discovery style).", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"mlipflows {version('mlipflows')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """High-throughput materials screening with machine-learned potentials."""
    quiet_third_party_warnings()


def quiet_third_party_warnings() -> None:
    """Our messages go to the console; the libraries' own notices (jobflow's "cd is
    deprecated", pymatgen's electronegativity notes, ...) are not for our users."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    noisy = r"(jobflow|pymatgen|spglib|sevenn|e3nn|torch|phonopy|phono3py|chgnet|maggma|monty|pyxtal).*"
    warnings.filterwarnings("ignore", category=UserWarning, module=noisy)


def _register_command_modules() -> None:
    import importlib
    import pkgutil

    from mlipflows import commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"mlipflows.commands.{info.name}")
        if hasattr(module, "register"):
            module.register(app, bench_app)


_register_command_modules()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
