"""Query the flat ``results`` collection of any store (embedded or MongoDB) into DataFrames.

- :func:`query_results` / :func:`find_results`: documents matching filters (campaign, model,
  task type, chemical system, elements, property ranges, ``--where`` expressions), one row
  per document, nested fields dotted (``model.name``).
- :func:`join_tasks`: one row per structure (``structure_id`` + ``campaign`` + ``model.name``),
  the fields of each task type prefixed by it (``stability.e_above_hull``,
  ``phonon.<field>``, ...). Generic on ``task_type``: a new kind of result joins as soon as
  its documents are in the collection.
- :func:`export_frame`: CSV, JSON or Parquet (pyarrow), chosen by the file suffix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from jobflow import JobStore

from mlipflows.store import RESULTS, get_job_store, store_errors

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
    "decomposes_to": "decomposes to",
    "min_frequency": "min THz",
    "has_imaginary_modes": "imaginary",
    "kappa_tot_avg": "κ (W/m·K)",
    "n_candidates": "candidates",
    "n_unique": "unique",
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
        if raw[:1] in "<>=!":
            raise WhereError(
                f"cannot read {clause!r}: unknown operator {op + raw[:1]!r}; use < <= > >= == !="
            )
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
    chemsys: str | list[str] | None = None,
    elements: list[str] | None = None,
    ranges: dict[str, tuple[float | None, float | None]] | None = None,
) -> dict[str, Any]:
    """A MongoDB query from the common filters.

    Args:
        chemsys: one or more chemical systems (``"Ba-O-Ti"``, any element order).
        elements: structures containing *all* these elements (and possibly others).
        ranges: ``{field: (low, high)}``, inclusive, either end None = open
            (e.g. ``{"e_above_hull": (None, 0.05)}``, eV/atom).
        extra: further criteria (e.g. from :func:`parse_where`), merged per field.
    """
    crit: dict[str, Any] = {}
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
    if chemsys:
        systems = [chemsys] if isinstance(chemsys, str) else list(chemsys)
        normal = ["-".join(sorted(s.split("-"))) for s in systems]
        crit["chemsys"] = normal[0] if len(normal) == 1 else {"$in": normal}
    if elements:
        crit["elements"] = {"$all": sorted(elements)}
    for field, (low, high) in (ranges or {}).items():
        bounds = {op: v for op, v in (("$gte", low), ("$lte", high)) if v is not None}
        if bounds:
            crit.setdefault(field, {}).update(bounds)
    for field, cond in (extra or {}).items():
        if isinstance(cond, dict) and isinstance(crit.get(field), dict):
            crit[field].update(cond)
        else:
            crit[field] = cond
    return crit


def query_results(
    store: JobStore | None = None,
    criteria: dict[str, Any] | None = None,
    sort: str | None = None,
    limit: int = 0,
    exclude: tuple[str, ...] = (),
) -> pd.DataFrame:
    """Result documents matching ``criteria`` as a flat DataFrame (nested keys dotted).

    ``exclude``: top-level fields left on the server (e.g. ``("structure",)`` for tables).
    Sorting and the limit run in the database (indexed fields on MongoDB).
    """
    store = store or get_job_store()
    results = store.additional_stores[RESULTS]
    properties: dict[str, int] = {"_id": 0} | dict.fromkeys(exclude, 0)
    opened_here = getattr(results, "_coll", None) is None  # leave a caller's connection open
    with store_errors(store, "querying results"):
        results.connect()
        try:
            docs = list(
                results.query(
                    criteria=criteria or {},
                    properties=properties,
                    sort={sort: 1} if sort else None,
                    limit=limit,
                )
            )
        finally:
            if opened_here:
                results.close()
    if not docs:
        return pd.DataFrame(columns=list(TABLE_COLUMNS))
    frame = pd.json_normalize(docs)
    if sort and sort in frame:  # stable order with missing values last, as the table shows them
        frame = frame.sort_values(sort, na_position="last", kind="stable").reset_index(drop=True)
    return frame


def find_results(
    store: JobStore | None = None,
    *,
    campaign: str | None = None,
    model: str | None = None,
    task_type: str | None = None,
    state: str | None = None,
    tag: str | None = None,
    chemsys: str | list[str] | None = None,
    elements: list[str] | None = None,
    ranges: dict[str, tuple[float | None, float | None]] | None = None,
    where: str | None = None,
    sort: str | None = None,
    limit: int = 0,
    exclude: tuple[str, ...] = ("structure",),
) -> pd.DataFrame:
    """Keyword-argument front end of :func:`query_results` (see :func:`build_criteria`).

    Raises:
        QueryError: nothing matched because a field (``where``, ``ranges``, ``sort``) or a
            ``task_type`` is unknown to the store; the message names the nearest ones. A query
            that is merely empty returns an empty frame.
    """
    extra = parse_where(where) if where else None
    crit = build_criteria(tag, campaign, model, task_type, state, extra, chemsys, elements, ranges)
    frame = query_results(store, crit, sort=sort, limit=limit, exclude=exclude)
    if frame.empty and (extra or ranges or task_type or sort):
        names = [*(extra or {}), *(ranges or {}), *([sort.lstrip("-")] if sort else [])]
        _explain_empty(
            store,
            build_criteria(tag, campaign, model, None, state, None, chemsys, elements),
            names,
            task_type,
        )
    return frame


def _explain_empty(
    store: JobStore | None, base: dict[str, Any], names: list[str], task_type: str | None
) -> None:
    """Raise QueryError when a name in an empty query is unknown (a typo), else return."""
    from mlipflows.selection import QueryError, _resolve_flat, known_fields, suggest

    store = store if store is not None else get_job_store()
    results = store.additional_stores[RESULTS]
    with store_errors(store, "reading results"):
        results.connect()
        kinds = {str(t) for t in results.distinct("task_type", base) if t}
    if not kinds:
        return  # nothing stored under these filters: no field to check against
    if task_type and task_type not in kinds:
        raise QueryError(f"task_type {task_type!r}: no result here has it{suggest(task_type, kinds)}")
    fields = known_fields(store, {**base, "task_type": task_type} if task_type else base)
    for name in names:
        _resolve_flat(name, fields)


# Columns that identify a structure's result and are the same for all its task types.
JOIN_KEYS = ("structure_id", "campaign", "model.name")
SHARED_COLUMNS = ("formula_pretty", "formula_reduced", "chemsys", "elements", "nsites")
# Per-document bookkeeping that would only repeat in every task's columns.
DROPPED_COLUMNS = ("task_type", "tags", "job_uuid", "structure")


def join_tasks(frame: pd.DataFrame, task_types: list[str] | None = None) -> pd.DataFrame:
    """One row per structure, each task type's fields prefixed with ``<task_type>.``.

    ``frame`` holds documents of several task types (from :func:`query_results`). Rows are
    keyed by ``structure_id``, ``campaign`` and ``model.name``; identity fields (formula,
    chemsys, elements, nsites) stay unprefixed. A funnel stage contributes the documents of
    its current settings only (:func:`current_stage_documents`), so a row never mixes a stage's
    superseded results with the funnel as it stands. When a structure still has more than one
    document of a task type (e.g. plain runs with different settings), the newest
    (``created_at``) is kept. A structure without a given task type gets empty (NaN) cells.
    """
    if frame.empty:
        return pd.DataFrame(columns=list(JOIN_KEYS))
    frame = current_stage_documents(frame)
    if "task_type" in frame:
        frame = frame[frame["task_type"] != "manifest"]
    for key in JOIN_KEYS:
        if key not in frame:
            frame[key] = None
    frame[list(JOIN_KEYS)] = frame[list(JOIN_KEYS)].fillna("")
    # a funnel stage's documents join under the stage's name (two stages may share a task type)
    frame["task_type"] = join_prefix(frame)
    kinds = task_types or sorted(frame["task_type"].dropna().unique())
    shared = [c for c in SHARED_COLUMNS if c in frame]
    joined = frame.drop_duplicates(list(JOIN_KEYS))[[*JOIN_KEYS, *shared]]
    for kind in kinds:
        part = frame[frame["task_type"] == kind]
        if part.empty:
            continue
        if "created_at" in part:
            part = part.sort_values("created_at", kind="stable")
        part = part.drop_duplicates(list(JOIN_KEYS), keep="last")
        drop = [c for c in part if c in shared or c in DROPPED_COLUMNS or c.startswith("structure.")]
        part = part.drop(columns=drop).dropna(axis=1, how="all")
        part = part.rename(columns={c: f"{kind}.{c}" for c in part if c not in JOIN_KEYS})
        joined = joined.merge(part, on=list(JOIN_KEYS), how="left")
    return joined.reset_index(drop=True)


def current_stage_documents(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the documents of a campaign stage's superseded settings.

    A stage's current settings are those of its newest manifest (what ``campaign status``
    shows), else of its newest document (relax and hull have no manifest). Documents outside
    campaign stages are kept as they are.
    """
    needed = {"campaign", "stage", "settings_digest"}
    if not needed <= set(frame.columns):
        return frame.copy()
    staged = frame["stage"].notna() & frame["campaign"].notna() & frame["settings_digest"].notna()
    if not staged.any():
        return frame.copy()
    part = frame[staged]
    if "created_at" in part:
        part = part.sort_values("created_at", kind="stable")
    newest = part.drop_duplicates(["campaign", "stage"], keep="last")
    current = {(r.campaign, r.stage): r.settings_digest for r in newest.itertuples()}
    if "task_type" in part:
        manifests = part[part["task_type"] == "manifest"].drop_duplicates(["campaign", "stage"], keep="last")
        current.update({(r.campaign, r.stage): r.settings_digest for r in manifests.itertuples()})
    keep = [
        not is_staged or current.get((c, s)) == d
        for is_staged, c, s, d in zip(
            staged, frame["campaign"], frame["stage"], frame["settings_digest"], strict=True
        )
    ]
    return frame[keep].copy()


def join_prefix(frame: pd.DataFrame) -> pd.Series:
    """The column prefix of each document: its funnel stage's name, else its task type."""
    if "stage" not in frame:
        return frame["task_type"]
    funnel = frame["stage"].notna() & ~frame["stage"].isin(["relax", "hull"])
    return frame["stage"].where(funnel, frame["task_type"])


def csv_ready(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with list and dict cells as JSON text (not Python's repr), for CSV."""
    return frame.apply(_column_for_files) if len(frame) else frame


def _column_for_files(col: pd.Series) -> pd.Series:
    """Lists/dicts as JSON text (CSV and Parquet cells must be flat or uniformly typed)."""
    if col.dtype == object and col.map(lambda v: isinstance(v, list | dict)).any():
        return col.map(lambda v: json.dumps(v, default=str) if isinstance(v, list | dict) else v)
    return col


def _column_for_parquet(col: pd.Series) -> pd.Series:
    """Lists stay lists (Arrow list columns); mappings become JSON text."""
    if col.dtype == object and col.map(lambda v: isinstance(v, dict) or _has_dicts(v)).any():
        return col.map(lambda v: json.dumps(v, default=str) if isinstance(v, list | dict) else v)
    return col


def _has_dicts(v: Any) -> bool:
    return isinstance(v, list) and any(isinstance(x, dict | list) for x in v)


def export_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` as CSV, JSON (records) or Parquet, by the suffix of ``path``."""
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(frame.to_json(orient="records", indent=1, date_format="iso", default_handler=str))
        return path
    if suffix == ".csv":
        csv_ready(frame).to_csv(path, index=False)
    elif suffix in (".parquet", ".pq"):
        flat = frame.apply(_column_for_parquet)
        import pyarrow as pa

        for name in flat.columns:  # a column Arrow cannot type (mixed values) becomes text
            if flat[name].dtype == object:
                try:
                    pa.array(flat[name], from_pandas=True)
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    flat[name] = flat[name].map(
                        lambda v: None if v is None else json.dumps(v) if isinstance(v, list) else str(v)
                    )
        flat.to_parquet(path, index=False, engine="pyarrow")
    else:
        raise ValueError(f"{path}: export to .csv, .json or .parquet")
    return path


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns the CLI prints, with readable headers.

    For a joined frame (:func:`join_tasks`) these are the identity columns plus each task
    type's headline fields, headed ``<task> <header>``.
    """
    frame = _with_decomposition_text(frame)
    cols = {c: h for c, h in TABLE_COLUMNS.items() if c in frame}
    for col in frame.columns:
        kind, _, field = col.partition(".")
        if field in TABLE_COLUMNS and field not in ("task_type", "model.name", "structure_id"):
            cols.setdefault(col, f"{kind} {TABLE_COLUMNS[field]}")
    return frame[list(cols)].rename(columns=cols)


def decomposition_text(parts: Any) -> str:
    """``TiO2-anatase 1.00``: the phases (by entry id, which names the polymorph) and their
    fractions of the atoms; a reference's id is shown after its formula."""
    if not isinstance(parts, list | tuple):
        return ""
    names = []
    for p in parts:
        if not isinstance(p, dict):
            continue
        formula, entry = str(p.get("formula") or ""), str(p.get("entry_id") or "")
        names_formula = entry == formula or entry.startswith((f"{formula}-", f"{formula}_"))
        name = entry if names_formula else f"{formula} ({entry})" if entry else formula
        names.append(f"{name} {float(p.get('fraction') or 0):.2f}")
    return ", ".join(names)


def _with_decomposition_text(frame: pd.DataFrame) -> pd.DataFrame:
    """A ``decomposes_to`` column for unstable rows: which phases (polymorphs by id) lie below.

    Stability rows only: a joined table (``stability.decomposition``) is wide already, and its
    csv/json output carries the decomposition itself."""
    if "decomposition" not in frame:
        return frame
    text = frame["decomposition"].map(decomposition_text)
    if "is_stable" in frame:
        text = text.where(frame["is_stable"] != True, "")  # noqa: E712 (NaN, failed rows: not True)
    return frame.assign(decomposes_to=text)
