"""The funnel part of a campaign report: counts per stage (a figure) and the finalists table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from jobflow import JobStore

from mlipflows.campaign.funnel import gate_of, stage_docs, task_type_of
from mlipflows.campaign.stages import STAGE_KINDS, stage_class
from mlipflows.campaign.status import StageStatus, campaign_status
from mlipflows.store import RESULTS

HULL_HEADLINE = ("e_above_hull", "formation_energy_per_atom")


def funnel_stages(store: JobStore, campaign: str) -> list[StageStatus]:
    """The campaign's stages after relax and hull ([] for a plain stability campaign)."""
    stages = campaign_status(store, campaign)
    return stages if any(s.stage not in ("relax", "hull") for s in stages) else []


def funnel_svg(stages: list[StageStatus], path: Path) -> Path:
    """Horizontal bars per stage: selected, successful, through the gate; failures annotated."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [s.stage for s in stages]
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(stages) + 1.2))
    y = range(len(stages))[::-1]
    ax.barh(list(y), [s.selected for s in stages], color="#c9d6e8", label="selected")
    ax.barh(list(y), [s.successful for s in stages], color="#7fa3cc", height=0.6, label="successful")
    ax.barh(list(y), [s.passed for s in stages], color="#24507a", height=0.35, label="passed its gate")
    for yi, s in zip(y, stages, strict=True):
        bad = s.failed + s.unphysical
        note = f"{s.passed} / {s.selected}" + (f"  ({bad} failed)" if bad else "")
        if not s.ran:
            note = s.state
        ax.text(s.selected, yi, "  " + note, va="center", fontsize=8)
    ax.set_yticks(list(y), names)
    ax.set_xlabel("structures")
    ax.set_xlim(0, max(1, max(s.selected for s in stages)) * 1.35)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    return path


def finalists(store: JobStore, campaign: str, stages: list[StageStatus]) -> pd.DataFrame:
    """Structures through every stage's gate, with each stage's headline fields (``STAGE.field``)."""
    results = store.additional_stores[RESULTS]
    results.connect()
    frames = []
    last_ok: set[str] | None = None
    for s in stages:
        if s.stage == "relax" or s.settings_digest is None or not s.ran:
            continue  # finalists: through every stage that has run
        kind = s.kind
        docs = stage_docs(results, campaign, s.stage, s.settings_digest, task_type_of(kind))
        gate = gate_of(kind)
        ok = {d["structure_id"] for d in docs if d.get("state") == "successful" and not gate(d)}
        last_ok = ok if last_ok is None else last_ok & ok
        fields = (
            HULL_HEADLINE if kind == "hull" else (stage_class(kind).headline if kind in STAGE_KINDS else ())
        )
        rows = [
            {"structure_id": d["structure_id"], "formula": d.get("formula_pretty")}
            | {f"{s.stage}.{f}": d.get(f) for f in fields}
            for d in docs
        ]
        frames.append(pd.DataFrame(rows))
    if not frames or not last_ok:
        return pd.DataFrame()
    table = frames[0]
    for f in frames[1:]:
        table = table.merge(f.drop(columns=["formula"]), on="structure_id", how="left")
    table = table[table["structure_id"].isin(last_ok)]
    sort = next((c for c in table.columns if c.endswith(".e_above_hull")), None)
    return table.sort_values(sort) if sort else table


def funnel_columns(frame: pd.DataFrame, stages: list[StageStatus]) -> dict[str, Any]:
    """Headers of the finalists table: 'STAGE field (unit)'."""
    from mlipflows.schemas.units import field_unit

    kinds = {s.stage: s.kind for s in stages}
    headers = {}
    for c in frame.columns:
        stage, _, name = c.partition(".")
        unit = field_unit(task_type_of(kinds[stage]), name) if stage in kinds and name else None
        headers[c] = c.replace(".", " ") + (f" ({unit})" if unit else "")
    return headers
