"""Query the flat ``results`` collection of any store (embedded or MongoDB) into DataFrames."""

from __future__ import annotations

from typing import Any

import pandas as pd
from jobflow import JobStore

from mlipflows.store import RESULTS, get_job_store

TABLE_COLUMNS = {
    "structure_id": "id",
    "formula_pretty": "formula",
    "task_type": "task",
    "model.name": "model",
    "state": "state",
    "converged": "conv.",
    "n_steps": "steps",
    "energy_per_atom": "E (eV/atom)",
    "volume": "V (Å³)",
    "max_force": "|F|max (eV/Å)",
    "pressure": "P (GPa)",
    "formation_energy_per_atom": "Ef (eV/atom)",
    "e_above_hull": "E_hull (eV/atom)",
    "is_stable": "stable",
    "k_vrh": "K_VRH (GPa)",
    "g_vrh": "G_VRH (GPa)",
    "born_stable": "Born stable",
    "error": "error",
}

_OPS = {"<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte", "==": "$eq", "=": "$eq", "!=": "$ne"}


class WhereError(ValueError):
    """A ``--where`` expression we cannot read."""


def parse_where(expression: str) -> dict[str, Any]:
    """``"e_above_hull < 0.05 and chemsys == Ba-O-Ti"`` → a MongoDB query.

    Clauses are ``field op value`` joined by ``and``; ops are < <= > >= == = !=; values are
    numbers, true/false/null, or strings (quotes optional).
    """
    import re

    crit: dict[str, Any] = {}
    for clause in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        m = re.fullmatch(r"\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>|=)\s*(.+?)\s*", clause)
        if not m:
            raise WhereError(f"cannot read {clause!r}: write FIELD OP VALUE, e.g. e_above_hull < 0.05")
        field, op, raw = m.groups()
        crit.setdefault(field, {})[_OPS[op]] = _value(raw)
    return crit


def _value(raw: str) -> Any:
    if raw[:1] in "'\"" and raw[-1:] == raw[:1]:
        return raw[1:-1]
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none"):
        return None
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        return raw


def build_criteria(
    tag: str | None = None,
    campaign: str | None = None,
    model: str | None = None,
    task_type: str | None = None,
    state: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A MongoDB query from the common filters."""
    crit: dict[str, Any] = dict(extra or {})
    if tag:
        crit["tags"] = tag
    if campaign:
        crit["campaign"] = campaign
    if model:
        crit["model.name"] = model
    if task_type:
        crit["task_type"] = task_type
    if state:
        crit["state"] = state
    return crit


def query_results(
    store: JobStore | None = None,
    criteria: dict[str, Any] | None = None,
    sort: str | None = None,
    limit: int = 0,
) -> pd.DataFrame:
    """Result documents matching ``criteria`` as a flat DataFrame (nested keys dotted)."""
    store = store or get_job_store()
    results = store.additional_stores[RESULTS]
    results.connect()
    try:
        docs = list(results.query(criteria=criteria or {}, properties={"_id": 0}, limit=limit))
    finally:
        results.close()
    if not docs:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    frame = pd.json_normalize(docs)
    if sort and sort in frame:
        frame = frame.sort_values(sort, na_position="last").reset_index(drop=True)
    return frame


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the CLI prints, with readable headers."""
    cols = [c for c in TABLE_COLUMNS if c in frame]
    return frame[cols].rename(columns=TABLE_COLUMNS)
