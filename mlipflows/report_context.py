"""What a campaign report says about itself: model, hull mode, references, settings, date,
banners, and chemical systems whose hull is only the elements."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
from pymatgen.core import Composition


@dataclass
class ReportContext:
    """Provenance and warnings shown at the top of a report."""

    model: str = ""
    hull_mode: str = ""
    references: str = ""
    settings: str = ""
    generated: str = ""
    last_result: str = ""
    n_not_converged: int = 0
    lonely: list[str] = field(default_factory=list)  # on the hull with nothing competing


def context(
    frame: pd.DataFrame, stability: pd.DataFrame, pools: dict[str, list[dict]] | None
) -> ReportContext:
    """Read the report's header from the campaign's documents and its hull job's entries."""
    ctx = ReportContext(generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    relax = frame[frame["task_type"] == "relax"] if "task_type" in frame else frame.iloc[:0]
    if len(relax):
        first = relax.iloc[0]
        checksum = str(first.get("model.checksum", ""))
        # a hash is cut (its head identifies it); an analytic model's parameters are shown whole
        shown = f"{checksum[:19]}…" if checksum.startswith("sha256:") else checksum
        ctx.model = f"{first.get('model.name')} {first.get('model.version', '')} (weights {shown})"
        keys = [c for c in relax.columns if c.startswith("settings.")]
        shown = [c for c in keys if pd.notna(first[c])]
        ctx.settings = ", ".join(f"{c.split('.', 1)[1]} {_plain(first[c])}" for c in shown)
        is_candidate = relax["tags"].map(lambda t: "candidate" in t if isinstance(t, list) else False)
        cand = relax[is_candidate]
        ctx.n_not_converged = int(((cand["state"] == "successful") & (cand.get("converged") == False)).sum())  # noqa: E712
    if "created_at" in frame:
        ctx.last_result = str(frame["created_at"].max())[:16].replace("T", " ")
    if len(stability) and "hull_mode" in stability:
        ctx.hull_mode = str(stability["hull_mode"].iloc[0])
    ctx.references = (
        "elemental references (fcc, bcc, hcp, diamond; dimers for gases) relaxed with the same model"
        if ctx.hull_mode == "mlip"
        else "DFT reference entries (MP2020-corrected MLIP energies measured against them)"
        if ctx.hull_mode == "dft"
        else ""
    )
    if pools and len(stability):
        ctx.lonely = lonely_on_hull(stability, pools)
    return ctx


def lonely_on_hull(stability: pd.DataFrame, pools: dict[str, list[dict]]) -> list[str]:
    """Stable candidates whose chemical system holds no other compound than themselves:
    on the hull only because nothing competes."""
    compounds: dict[str, set[str]] = defaultdict(set)
    for chemsys, entries in pools.items():
        for e in entries:
            comp = Composition(e["formula"])
            if len(comp.elements) > 1:
                compounds[chemsys].add(comp.reduced_formula)
    out = []
    for row in stability.to_dict("records"):
        if not row.get("is_stable"):
            continue
        others = compounds.get(row["chemsys"], set()) - {row["formula_reduced"]}
        if not others:
            out.append(row["formula_pretty"])
    return sorted(set(out))


def systems_by_closeness(stability: pd.DataFrame, limit: int) -> tuple[list[str], int]:
    """Chemical systems ordered by their lowest candidate's distance to the hull; (shown, total)."""
    if not len(stability):
        return [], 0
    lowest = stability.groupby("chemsys")["e_above_hull"].min().sort_values(kind="stable")
    return list(lowest.index[:limit]), len(lowest)


def _plain(value: object) -> object:
    """300.0 → 300: pandas turns integer columns with gaps into floats."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
