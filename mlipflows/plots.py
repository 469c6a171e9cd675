"""Figures from stored results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from mlipflows.errors import MlipflowsError


def latest_hull_output(store: Any, campaign: str) -> dict:
    """Output of the most recent hull job of ``campaign`` (with its phase-diagram entries)."""
    store.connect()
    doc = store.query_one({"name": f"hull {campaign}"}, sort={"completed_at": -1}, load=True)
    if doc is None:
        raise MlipflowsError(f"no hull job found for campaign {campaign!r}; run the campaign first")
    return doc["output"]


def plotted_diagram(entries: list[Any]) -> tuple[Any, float]:
    """The diagram a hull plot shows and its window of unstable entries (eV/atom).

    The elemental references' unstable polymorphs only crowd the corners with labels, so they
    are left out (the hull is the same without them); the window holds every candidate: the
    highest one sets it (at least 0.1 eV/atom).
    """
    from pymatgen.analysis.phase_diagram import PhaseDiagram

    full = PhaseDiagram(entries)
    shown = [e for e in entries if not str(e.entry_id).startswith("ref-") or e in full.stable_entries]
    diagram = PhaseDiagram(shown)
    above = [diagram.get_e_above_hull(e) for e in shown]
    return diagram, max([0.1, *[a + 0.02 for a in above if a is not None and a < 5]])


def plot_phase_diagram(store: Any, campaign: str, chemsys: str, path: Path) -> None:
    """pymatgen's phase-diagram plot of one chemical system of a campaign's hull."""
    from pymatgen.analysis.phase_diagram import PDPlotter

    from mlipflows.hull import pool_entries

    pools = latest_hull_output(store, campaign)["phase_diagrams"]
    if chemsys not in pools:
        raise MlipflowsError(
            f"chemical system {chemsys} is not in campaign {campaign}: " + ", ".join(sorted(pools)[:8])
        )
    diagram, window = plotted_diagram(pool_entries(pools, chemsys))
    if diagram.dim > 4:
        raise MlipflowsError(f"{chemsys} has {diagram.dim} elements; phase diagrams plot up to 4")
    quiet = logging.getLogger("matplotlib.axes._base")  # "Ignoring fixed y limits ..." on ternaries
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        plotter = PDPlotter(diagram, backend="matplotlib", show_unstable=window)
        numbered = diagram.dim <= 3  # 3D (quaternary) axes keep pymatgen's own labels
        ax = plotter.get_plot(label_unstable=not numbered)
        fig = ax.get_figure() if hasattr(ax, "get_figure") else plt.gcf()
        fig.set_size_inches(5.0, 4.0)
        # pymatgen sizes its fonts for a 12-inch figure; these read at the report's width
        ax.xaxis.label.set_fontsize(11)
        ax.yaxis.label.set_fontsize(11)
        ax.tick_params(labelsize=10)
        for text in ax.texts:
            text.set_fontsize(9)
        ax.set_title(f"{chemsys} (unstable up to {window:.2f} eV/atom shown)", fontsize=11)
        if numbered:
            _number_unstable(ax, diagram, plotter)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    finally:
        quiet.setLevel(level)
    plt.close(fig)


KEY_ROWS = 12  # unstable phases named under a plot; the hull table lists the rest


def _number_unstable(ax: Any, diagram: Any, plotter: Any) -> None:
    """Unstable phases as numbers at their points and a key under the plot (id, eV/atom above
    the hull): polymorphs of one formula share a point, so their names would overlap. Only
    the phases pymatgen draws (inside its ``show_unstable`` window) are numbered."""
    above = {e: diagram.get_e_above_hull(e) for e in plotter.pd_plot_data[2]}
    drawn = [(e, xy) for e, xy in plotter.pd_plot_data[2].items() if above[e] <= plotter.show_unstable]
    ranked = sorted(drawn, key=lambda item: above[item[0]])
    lines = []
    for k, (entry, coords) in enumerate(ranked, start=1):
        x, y = coords[0], coords[1]
        ax.annotate(str(k), (x, y), xytext=(4, 3), textcoords="offset points", fontsize=8, color="tab:red")
        if k <= KEY_ROWS:
            name = entry.entry_id or entry.name
            lines.append(f"{k}  {name}  +{above[entry]:.3f} eV/atom")
    if len(ranked) > KEY_ROWS:
        lines.append(f"… {len(ranked) - KEY_ROWS} more: `mlipflows hull` lists them")
    if lines:
        ax.text(
            0.0, -0.04 if diagram.dim == 3 else -0.2,  # below the ternary, or the binary's x label
            "above the hull:\n" + "\n".join(lines), transform=ax.transAxes,
            va="top", ha="left", fontsize=8, color="0.25",
        )  # fmt: skip
