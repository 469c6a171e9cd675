"""Figures from stored results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

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


def plot_phase_diagram(store: Any, campaign: str, chemsys: str, path: Path) -> None:
    """pymatgen's phase-diagram plot of one chemical system of a campaign's hull."""
    from pymatgen.analysis.phase_diagram import PDPlotter, PhaseDiagram

    from mlipflows.hull import pool_entries

    pools = latest_hull_output(store, campaign)["phase_diagrams"]
    if chemsys not in pools:
        raise MlipflowsError(
            f"chemical system {chemsys} is not in campaign {campaign}: " + ", ".join(sorted(pools)[:8])
        )
    entries = pool_entries(pools, chemsys)
    diagram = PhaseDiagram(entries)
    if diagram.dim > 4:
        raise MlipflowsError(f"{chemsys} has {diagram.dim} elements; phase diagrams plot up to 4")
    # the window holds every candidate: the highest one sets it (at least 0.1 eV/atom)
    above = [diagram.get_e_above_hull(e) for e in entries]
    window = max([0.1, *[a + 0.02 for a in above if a is not None and a < 5]])
    with plt.rc_context({"font.size": 9, "axes.labelsize": 10, "xtick.labelsize": 8, "ytick.labelsize": 8}):
        ax = PDPlotter(diagram, backend="matplotlib", show_unstable=window).get_plot()
        fig = ax.get_figure() if hasattr(ax, "get_figure") else plt.gcf()
        fig.set_size_inches(5.5, 4.5)
        for text in ax.texts:  # pymatgen's labels are sized for a large figure
            text.set_fontsize(8)
        ax.set_title(f"{campaign}: {chemsys} (unstable up to {window:.2f} eV/atom shown)", fontsize=9)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
