"""Right answers from queries: fields by name (``field`` or ``task.field``), checked, suggested.

:func:`select_results` is what ``mlipflows results`` runs. Without ``join`` the filters, sort
and limit run in the database; with ``join`` every matching document is joined first (one row
per structure, :func:`mlipflows.results.join_tasks`) and ``where``, the sort and the limit
apply to the joined rows, so ``--join --sort e_above_hull --limit 3`` gives the three lowest
structures with all their columns. A field may be written bare (``e_above_hull``) when only
one task has it, or as ``task.field`` (``stability.e_above_hull``, ``phonon.min_frequency``;
a funnel stage's name works too: ``phonons.min_frequency``). An unknown field, a comparison
with a non-number, an ambiguous name or an unknown sort field is a :class:`QueryError` that
names the nearest valid fields.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from jobflow import JobStore

from mlipflows.errors import MlipflowsError
from mlipflows.results import (
    WhereError,
    build_criteria,
    join_tasks,
    parse_where,
    query_results,
)
from mlipflows.store import RESULTS, store_errors

_NUMERIC_OPS = {"$lt", "$lte", "$gt", "$gte"}
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$lt": operator.lt,
    "$lte": operator.le,
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$eq": operator.eq,
    "$ne": operator.ne,
}
FIELD_SAMPLE = 500  # documents read to learn which fields exist


class QueryError(MlipflowsError):
    """A query that cannot be answered as written; the message says the nearest valid form."""


@dataclass
class Selection:
    """The rows of a query, how many there were before ``limit``, and each row's structure."""

    frame: pd.DataFrame
    total: int
    structures: dict[int, dict[str, Any]]


def suggest(name: str, known: Iterable[str]) -> str:
    """' (did you mean a, b?)' for the nearest known names, or ''."""
    close = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    if not close:
        bare = name.split(".")[-1]
        close = [k for k in sorted(set(known)) if k.split(".")[-1] == bare][:3]
    return f" (did you mean {', '.join(close)}?)" if close else ""


def _flat_keys(doc: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for k, v in doc.items():
        if k == "structure" and not prefix:
            keys.add(k)
            continue
        keys.add(prefix + k)
        if isinstance(v, dict):
            keys |= _flat_keys(v, f"{prefix}{k}.")
    return keys


def known_fields(store: JobStore, criteria: dict[str, Any]) -> dict[str, set[str]]:
    """Field names per task type among (a sample of) the matching documents."""
    results = store.additional_stores[RESULTS]
    with store_errors(store, "reading results"):
        results.connect()
        docs = list(results.query(criteria, properties={"_id": 0, "structure": 0}, limit=FIELD_SAMPLE))
    fields: dict[str, set[str]] = {}
    for d in docs:
        fields.setdefault(d.get("task_type", "?"), set()).update(_flat_keys(d))
    return fields


def _check_values(crit: dict[str, Any], expression: str) -> None:
    for name, conds in crit.items():
        for op, value in conds.items():
            if op in _NUMERIC_OPS and not isinstance(value, int | float):
                raise QueryError(f"--where {expression!r}: {name} is compared with {value!r}, not a number")


def _resolve_flat(name: str, fields: dict[str, set[str]]) -> tuple[str | None, str]:
    """(task type or None, field) for a non-joined query."""
    every = set().union(*fields.values()) if fields else set()
    if name in every:
        return None, name
    task, _, field = name.partition(".")
    if field and task in fields and field in fields[task]:
        return task, field
    qualified = {f"{t}.{f}" for t, fs in fields.items() for f in fs}
    raise QueryError(f"unknown field {name!r}{suggest(name, every | qualified)}")


def _resolve_joined(name: str, columns: list[str], aliases: dict[str, str]) -> str:
    """The joined column a name means: exact, ``task.field`` via aliases, or a unique bare field."""
    if name in columns:
        return name
    head, _, field = name.partition(".")
    if field and head in aliases and f"{aliases[head]}.{field}" in columns:
        return f"{aliases[head]}.{field}"
    owners = [c for c in columns if c.split(".", 1)[-1] == name and "." in c]
    if len(owners) == 1:
        return owners[0]
    if len(owners) > 1:
        raise QueryError(f"{name!r} is ambiguous: write one of {', '.join(sorted(owners))}")
    raise QueryError(f"unknown field {name!r}{suggest(name, columns)}")


def _matches(value: Any, op: str, target: Any) -> bool:
    """One joined cell against ``op target``; a list (κ per temperature) matches when any of
    its values does, as MongoDB filters lists, so a query means the same joined or not."""
    if isinstance(value, list | tuple) or (hasattr(value, "ndim") and getattr(value, "ndim", 0) == 1):
        return any(_matches(v, op, target) for v in value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (op == "$eq" and target is None) or (op == "$ne" and target is not None)
    try:
        return bool(_COMPARE[op](value, target))
    except TypeError:
        return False


def select_results(
    store: JobStore,
    *,
    tag: str | None = None,
    campaign: str | None = None,
    model: str | None = None,
    task: str | None = None,
    state: str | None = None,
    chemsys: list[str] | None = None,
    elements: list[str] | None = None,
    where: str | None = None,
    sort: str | None = None,
    limit: int = 0,
    join: bool = False,
    with_structures: bool = False,
) -> Selection:
    """Filter, (join,) sort and limit stored results; ``sort`` may start with ``-`` (descending).

    Raises:
        QueryError: a malformed ``where``, an unknown / ambiguous field or sort field.
    """
    try:
        crit = parse_where(where) if where else {}
    except WhereError as exc:
        raise QueryError(f"--where: {exc}") from None
    _check_values(crit, where or "")
    base = build_criteria(tag, campaign, model, None if join else task, state, None, chemsys, elements)
    if join and task:
        base["task_type"] = {"$in": task.split(",")}
    descending = bool(sort and sort.startswith("-"))
    sort_name = sort.lstrip("-") if sort else None
    exclude = () if with_structures or not join else ("structure",)
    if join:
        frame = query_results(store, base, exclude=exclude)
        if frame.empty:
            return Selection(frame, 0, {})
        structures = _newest_structures(frame) if with_structures else {}
        joined = join_tasks(frame.drop(columns=[c for c in frame if c.startswith("structure.")]))
        aliases = _aliases(frame)
        columns = list(joined.columns)
        for name, conds in crit.items():
            col = _resolve_joined(name, columns, aliases)
            keep = joined[col].map(lambda v, c=conds: all(_matches(v, op, t) for op, t in c.items()))
            joined = joined[keep.astype(bool)]
        if sort_name:
            col = _resolve_joined(sort_name, columns, aliases)
            joined = joined.sort_values(col, ascending=not descending, na_position="last", kind="stable")
        total = len(joined)
        joined = joined.head(limit) if limit else joined
        rows = joined.reset_index(drop=True)
        keys = zip(rows["structure_id"], rows["campaign"], rows["model.name"], strict=True)
        return Selection(rows, total, {k: structures[key] for k, key in enumerate(keys) if key in structures})
    fields = known_fields(store, base)
    mongo: dict[str, Any] = {}
    for name, conds in crit.items():
        t, field = _resolve_flat(name, fields)
        if t is not None:
            base["task_type"] = t
        mongo[field] = conds
    sort_field = None
    if sort_name:
        t, sort_field = _resolve_flat(sort_name, fields)
        if t is not None:
            base["task_type"] = t
    criteria = build_criteria(extra=mongo) | base
    results = store.additional_stores[RESULTS]
    with store_errors(store, "counting results"):
        results.connect()
        total = results.count(criteria)
    frame = query_results(store, criteria, sort=sort_field, limit=0 if descending else limit, exclude=exclude)
    if descending and sort_field in frame:
        frame = frame.sort_values(sort_field, ascending=False, na_position="last", kind="stable")
        frame = (frame.head(limit) if limit else frame).reset_index(drop=True)
    structures = {}
    if with_structures and "structure.lattice.matrix" in frame:
        structures = {k: _structure_of(row) for k, row in frame.iterrows()}
    return Selection(frame, total, structures)


def _aliases(frame: pd.DataFrame) -> dict[str, str]:
    """What a name before the dot may be → the joined column prefix: task types and stage names.

    Documents of a funnel stage join under the stage's name; their task type is an alias when
    only one stage has it (``phonon.min_frequency`` for a stage named ``phonons``).
    """
    from mlipflows.results import join_prefix

    prefix = join_prefix(frame)
    out = {p: p for p in prefix.dropna().unique()}
    by_task: dict[str, set[str]] = {}
    for t, p in zip(frame["task_type"], prefix, strict=True):
        by_task.setdefault(t, set()).add(p)
    out |= {t: next(iter(ps)) for t, ps in by_task.items() if len(ps) == 1 and t not in out}
    return out


def _structure_of(row: pd.Series) -> dict[str, Any]:
    """A structure dict back from the dotted columns of one flattened document."""
    out: dict[str, Any] = {}
    for col, value in row.items():
        if not str(col).startswith("structure."):
            continue
        parts = str(col).split(".")[1:]
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


def _newest_structures(frame: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    """Per structure_id + campaign + model, the structure of its newest document."""
    part = frame.sort_values("created_at", kind="stable") if "created_at" in frame else frame
    out = {}
    for _, row in part.iterrows():
        if "structure.lattice.matrix" in row and isinstance(row["structure.lattice.matrix"], list):
            key = (row["structure_id"], row.get("campaign") or "", row.get("model.name") or "")
            out[key] = _structure_of(row)
    return out
