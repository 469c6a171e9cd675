"""A campaign's static HTML report: counts, failures, hull plots, histogram, sortable tables.

``build_report(store, campaign, out_dir)`` writes ``index.html`` and its figures (PNG hull
plots per chemical system, SVG histogram) into ``out_dir``; the page needs no server and no
network (the table sorter is a few lines of inline JavaScript). Task types other than
relax/stability (phonon, κ, elastic, ranking, ... whatever is stored for the campaign) get a
section each, from the same per-structure join that ``mlipflows results --join`` uses.
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
from jobflow import JobStore

from mlipflows.errors import MlipflowsError, short_reason
from mlipflows.results import find_results, join_tasks
from mlipflows.schemas import BaseDocument
from mlipflows.store import describe_store, redact_uri

log = logging.getLogger(__name__)

SECTION_TITLES = {
    "phonon": "Phonons",
    "kappa": "Thermal conductivity κ",
    "elastic": "Elastic properties",
    "ranking": "Rankings",
}
# a task section's first columns (after the id and formula): its answer, then the rest
HEADLINE = {
    "phonon": ("has_imaginary_modes", "min_frequency", "spacegroup"),
    "kappa": ("kappa_tot_avg", "kappa_skipped", "has_imaginary_modes"),
    "elastic": ("k_vrh", "g_vrh", "born_stable"),
}
# Tasks summarised by the main sections; every other task type gets its own section.
MAIN_TASKS = ("relax", "static", "stability")
MAX_HULL_PLOTS = 24


@dataclass
class ReportData:
    """What the page shows, computed from the campaign's result documents."""

    campaign: str
    n_candidates: int = 0
    n_relaxed: int = 0
    n_failed: int = 0
    n_unphysical: int = 0
    n_stable: int = 0
    n_references: int = 0
    failure_reasons: list[tuple[str, int]] = field(default_factory=list)
    stability: pd.DataFrame = field(default_factory=pd.DataFrame)
    other_tasks: dict[str, pd.DataFrame] = field(default_factory=dict)
    task_types: dict[str, str] = field(default_factory=dict)  # section (stage or task) → task type
    funnel: list[Any] = field(default_factory=list)
    finalists: pd.DataFrame = field(default_factory=pd.DataFrame)
    context: Any = None
    surrogate: Any = None  # report_surrogate.SurrogateSummary of a surrogate campaign
    hull: pd.DataFrame = field(default_factory=pd.DataFrame)  # every hull document


class ReportError(MlipflowsError):
    """Nothing to report (unknown campaign, or no results for it)."""


def collect(store: JobStore, campaign: str) -> ReportData:
    """Counts, failure reasons and per-task tables of ``campaign`` from the results store."""
    frame = find_results(store, campaign=campaign)
    if frame.empty:
        raise ReportError(f"no results for campaign {campaign!r} in {describe_store(store)}")
    data = ReportData(campaign)
    relax = frame[frame["task_type"] == "relax"]
    on_hull = frame["stage"].isin(["hull"]) | frame["stage"].isna() if "stage" in frame else True
    from mlipflows.report_surrogate import decisive_relaxations, is_surrogate, summarize

    if is_surrogate(frame):
        data.hull = frame[(frame["task_type"] == "stability") & on_hull]
        relax = decisive_relaxations(frame, data.hull)
        data.surrogate = summarize(frame, data.hull)
    failed_ids: set[str] = set()
    if len(relax):
        tags = relax["tags"] if "tags" in relax else pd.Series([[]] * len(relax), index=relax.index)
        is_candidate = tags.map(lambda t: "candidate" in (t if isinstance(t, list) else []))
        candidates = relax[is_candidate]
        data.n_references = int((~is_candidate).sum())
        data.n_candidates = len(candidates)
        data.n_relaxed = int((candidates["state"] == "successful").sum())
        failed = candidates[candidates["state"] != "successful"]
        data.n_unphysical = int((failed["state"] == "unphysical").sum())
        data.n_failed = len(failed) - data.n_unphysical
        failed_ids = set(failed["structure_id"])
        reasons = Counter(_reason(e) for e in failed.get("error", pd.Series(dtype=object)))
        data.failure_reasons = reasons.most_common()
    # the campaign's own hull (a polymorph stage stores a rebuilt one under its own name)
    stab = frame[(frame["task_type"] == "stability") & on_hull]
    if len(stab):
        data.n_candidates = max(data.n_candidates, len(stab))
        # failed on the hull although relaxed (failed relaxations are counted above)
        hull_failed = stab[(stab["state"] != "successful") & ~stab["structure_id"].isin(failed_ids)]
        hull_holes = int((hull_failed["state"] == "unphysical").sum())
        data.n_unphysical += hull_holes
        data.n_failed += len(hull_failed) - hull_holes
        data.failure_reasons += Counter(_reason(e) for e in hull_failed.get("error", [])).most_common()
        good = stab[stab["state"] == "successful"].dropna(axis=1, how="all")
        if len(good):
            data.n_stable = int(good.get("is_stable", pd.Series(dtype=bool)).fillna(False).astype(bool).sum())
            # ties (several on the hull) broken by formation energy
            order = [c for c in ("e_above_hull", "formation_energy_per_atom") if c in good]
            data.stability = good.sort_values(order, na_position="last", kind="stable")
    from mlipflows.plots import latest_hull_output
    from mlipflows.report_context import context
    from mlipflows.report_funnel import finalists, funnel_stages

    try:
        pools = latest_hull_output(store, campaign).get("phase_diagrams")
    except MlipflowsError:
        pools = None
    data.context = context(frame, data.stability, pools)

    data.funnel = funnel_stages(store, campaign)
    if data.funnel:
        data.finalists = finalists(store, campaign, data.funnel)
    from mlipflows.results import join_prefix

    prefixes = join_prefix(frame) if "task_type" in frame else pd.Series(dtype=object)
    others = sorted(set(prefixes.dropna()) - set(MAIN_TASKS) - {"ranking", "manifest", "surrogate"})
    if others:
        joined = join_tasks(frame, others)
        task_of = dict(zip(prefixes, frame["task_type"], strict=True))
        for kind in others:
            cols = [c for c in joined if c.startswith(f"{kind}.")]
            part = joined.dropna(subset=cols, how="all")
            data.other_tasks[kind] = part[["structure_id", "formula_pretty", *cols]]
            data.task_types[kind] = task_of.get(kind, kind)
    return data


def _reason(error: Any) -> str:
    """A failure reason without per-structure numbers, so equal causes group together."""
    text = str(error or "unknown reason")
    return short_reason(text.split(":")[0] if len(text) > 160 else text)


def histogram_svg(stability: pd.DataFrame, path: Path) -> Path | None:
    """Histogram of e_above_hull (eV/atom) of the successful candidates, as SVG."""
    values = pd.to_numeric(stability.get("e_above_hull"), errors="coerce").dropna() if len(stability) else []
    if len(values) == 0:
        return None
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(values, bins=min(40, max(5, len(values) // 3)), color="#3b6ea8", edgecolor="white")
    ax.axvline(0.0, color="#b03a2e", lw=1, ls="--", label="hull")
    ax.set_xlabel("E above hull (eV/atom)")
    ax.set_ylabel("candidates")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    return path


def hull_plots(store: JobStore, campaign: str, systems: list[str], out_dir: Path) -> dict[str, str]:
    """PNG phase diagram per chemical system (up to 4 elements); value: file name or why not."""
    from mlipflows.plots import plot_phase_diagram
    from mlipflows.progress import report_task

    made: dict[str, str] = {}
    total = min(len(systems), MAX_HULL_PLOTS)
    for chemsys in systems[:MAX_HULL_PLOTS]:
        report_task("hull plots", 1, total)
        if len(chemsys.split("-")) > 4:
            made[chemsys] = "more than 4 elements: no plot"
            continue
        name = f"hull-{chemsys}.png"
        try:
            plot_phase_diagram(store, campaign, chemsys, out_dir / name)
            made[chemsys] = name
        except (MlipflowsError, ValueError) as exc:
            log.warning("no hull plot for %s: %s", chemsys, exc)
            made[chemsys] = f"no plot: {exc}"
    return made


def _cell(value: Any) -> tuple[str, str]:
    """Display text and sort key of one table cell."""
    if value is None or (isinstance(value, float) and value != value):
        return "", ""
    if isinstance(value, bool):
        return ("yes" if value else "no"), str(int(value))
    if isinstance(value, float):
        text = f"{value:.4f}"
        return (text[1:] if text == "-0.0000" else text), repr(value)  # -1e-6 THz reads as 0
    if isinstance(value, list):
        from mlipflows.results import decomposition_text

        phases = value and all(isinstance(d, dict) and "formula" in d for d in value)
        text = decomposition_text(value) if phases else ", ".join(str(d) for d in value)
        return text, text
    return str(value), str(value)


def _is_count(name: str, col: pd.Series) -> bool:
    leaf = name.rsplit(".", 1)[-1]
    counting = leaf.startswith("n_") or leaf in ("nsites", "n_steps", "spacegroup") or "spacegroup" in leaf
    values = pd.to_numeric(col, errors="coerce").dropna()
    return counting and not values.empty and bool((values == values.round()).all())


def html_table(frame: pd.DataFrame, columns: dict[str, str], table_id: str) -> str:
    """A sortable table (click a header) of ``columns`` {field: header} of ``frame``."""
    cols = {c: h for c, h in columns.items() if c in frame}
    frame = frame[list(cols)].copy()
    for c in cols:
        frame[c] = frame[c].astype(object).map(_unwrap)
        if _is_count(c, frame[c]):  # counts that pandas made floats (a gap in the column)
            frame[c] = frame[c].map(lambda v: int(v) if isinstance(v, float) and v == v else v)
    head = "".join(f'<th data-col="{i}">{html.escape(h)}</th>' for i, h in enumerate(cols.values()))
    rows = []
    for rec in frame[list(cols)].to_dict("records"):
        cells = []
        for c in cols:
            text, key = _cell(rec[c])
            numeric = (
                ' class="num"' if isinstance(rec[c], int | float) and not isinstance(rec[c], bool) else ""
            )
            cells.append(f'<td{numeric} data-sort="{html.escape(key)}">{html.escape(text)}</td>')
        rows.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


STABILITY_COLUMNS = {
    "structure_id": "candidate",
    "formula_pretty": "formula",
    "chemsys": "chemical system",
    "formation_energy_per_atom": "Ef (eV/atom)",
    "e_above_hull": "E above hull (eV/atom)",
    "is_stable": "on hull",
    "decomposition": "decomposes to",
    "relax_converged": "relax converged",
}

# Click a header to sort (again to reverse); index.html#sort=TABLE:COLUMN:asc|desc opens sorted.
SORTER_JS = """
function sortTable(th, asc) {
  const table = th.closest('table'), body = table.tBodies[0], col = +th.dataset.col;
  table.querySelectorAll('th').forEach(h => delete h.dataset.dir);
  th.dataset.dir = asc ? 'asc' : 'desc';
  const key = r => r.cells[col].dataset.sort, num = v => v !== '' && !isNaN(v);
  [...body.rows].sort((a, b) => {
    const x = key(a), y = key(b);
    if (x === '' || y === '') return (x === '') - (y === '');
    const c = num(x) && num(y) ? x - y : x.localeCompare(y);
    return asc ? c : -c;
  }).forEach(r => body.appendChild(r));
}
document.querySelectorAll('table.sortable th').forEach(th =>
  th.addEventListener('click', () => sortTable(th, th.dataset.dir !== 'asc')));
const wanted = location.hash.match(/^#sort=([\\w-]+):(\\d+):(asc|desc)$/);
if (wanted) {
  const th = document.querySelector(`#${wanted[1]} th[data-col="${wanted[2]}"]`);
  if (th) sortTable(th, wanted[3] === 'asc');
}
"""

CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;background:#fff}
h1{margin-bottom:.2em} .meta{color:#666} .cards{display:flex;gap:1em;flex-wrap:wrap}
.card{border:1px solid #ccd;border-radius:6px;padding:.8em 1.2em;min-width:8em;background:#f4f7fb}
.card b{display:block;font-size:1.8em;color:#24507a}
table{border-collapse:collapse;margin:1em 0;font-size:.9em} td,th{border:1px solid #ccd;padding:.3em .6em}
th{background:#24507a;color:#fff;cursor:pointer} td.num{text-align:right;font-variant-numeric:tabular-nums}
th[data-dir=asc]::after{content:" ▲"} th[data-dir=desc]::after{content:" ▼"}
.plots{display:flex;flex-wrap:wrap;gap:1em} figure{margin:0} figure img{width:480px;border:1px solid #eee}
.banner{background:#fff4d6;border-left:4px solid #d49b00;padding:.5em .8em;margin:.4em 0}
"""


def render_html(data: ReportData, figures: dict[str, Any], top: int, where: str) -> str:
    """The page (all text escaped; ``where`` is already redacted)."""
    esc = html.escape
    cards = "".join(
        f'<div class="card"><b>{n}</b>{esc(label)}</div>'
        for label, n in (
            ("candidates", data.n_candidates),
            ("relaxed", data.n_relaxed),
            ("failed", data.n_failed),
            ("unphysical (model holes, kept out)", data.n_unphysical),
            ("stable (on hull)", data.n_stable),
            ("reference structures", data.n_references),
        )
    )
    ctx = data.context
    meta = [f"results from {esc(where)}"]
    if ctx is not None:
        meta += [
            f"model <b>{esc(ctx.model)}</b>",
            f"hull mode <b>{esc(ctx.hull_mode)}</b>: {esc(ctx.references)}" if ctx.hull_mode else "",
            f"relaxation: {esc(ctx.settings)}" if ctx.settings else "",
            f"last result {esc(ctx.last_result)}; report made {esc(ctx.generated)}",
        ]
    parts = [
        f"<h1>Campaign {esc(data.campaign)}</h1>",
        '<p class="meta">' + "<br>".join(m for m in meta if m) + "</p>",
    ]
    banners = []
    if data.n_unphysical:
        banners.append(
            f"{data.n_unphysical} candidates are unphysical (the model fell into a hole): they are "
            "kept out of every hull and ranking; see the reasons below"
        )
    if ctx is not None and ctx.n_not_converged:
        banners.append(
            f"{ctx.n_not_converged} candidates did not converge: their energies are from the last step"
        )
    if data.n_failed:
        banners.append(f"{data.n_failed} candidates failed; reasons below")
    if ctx is not None and ctx.lonely:
        shown = ", ".join(ctx.lonely[:12]) + (" …" if len(ctx.lonely) > 12 else "")
        banners.append(
            f"{len(ctx.lonely)} are on the hull only because nothing competes in their chemical "
            f"system (no other compound was computed): {shown}"
        )
    parts += [f'<p class="banner">{esc(b)}</p>' for b in banners]
    parts.append(f'<section id="summary"><h2>Summary</h2><div class="cards">{cards}</div></section>')
    if data.failure_reasons:
        items = "".join(f"<li>{n} × {esc(reason)}</li>" for reason, n in data.failure_reasons)
        parts.append(
            f'<section id="failures"><h2>Failed or unphysical relaxations</h2><ul>{items}</ul></section>'
        )
    if data.funnel:
        items = "".join(_funnel_item(s) for s in data.funnel)
        fig = f'<img src="{esc(figures["funnel"])}" alt="funnel">' if figures.get("funnel") else ""
        parts.append(f'<section id="funnel"><h2>Funnel</h2>{fig}<ul>{items}</ul></section>')
    if len(data.finalists):
        from mlipflows.report_funnel import funnel_columns

        parts.append(
            f'<section id="finalists"><h2>Finalists ({len(data.finalists)}: through every stage)</h2>'
            + html_table(
                data.finalists.head(top), funnel_columns(data.finalists, data.funnel), "finalists-table"
            )
            + "</section>"
        )
    if data.surrogate is not None:
        from mlipflows.report_surrogate import surrogate_html

        parts.append(surrogate_html(data.surrogate, figures.get("surrogate")))
    if figures.get("histogram"):
        parts.append(
            '<section id="histogram"><h2>Distance to the hull</h2>'
            f'<img src="{esc(figures["histogram"])}" alt="e_above_hull histogram"></section>'
        )
    if len(data.stability):
        shown = data.stability.head(top).copy()
        if "decomposition" in shown and "is_stable" in shown:  # a phase on the hull is itself
            stable = shown["is_stable"] == True  # noqa: E712 (NaN for failed rows)
            shown["decomposition"] = [
                [] if s else d for s, d in zip(stable, shown["decomposition"], strict=True)
            ]
        parts.append(
            f'<section id="stable"><h2>Most stable candidates ({len(shown)} of {len(data.stability)})</h2>'
            + html_table(shown, STABILITY_COLUMNS, "stable-table")
            + "</section>"
        )
    hulls = figures.get("hulls", {})
    if hulls:
        figs = []
        for chemsys, item in hulls.items():
            body = (
                f'<a href="{esc(item)}"><img src="{esc(item)}" alt="hull {esc(chemsys)}"></a>'
                if item.endswith(".png")
                else esc(item)
            )
            figs.append(f"<figure>{body}<figcaption>{esc(chemsys)}</figcaption></figure>")
        parts.append(
            '<section id="hulls"><h2>Hulls per chemical system</h2>'
            f'<p class="meta">{esc(figures.get("hull_note", ""))}</p>'
            f'<div class="plots">{"".join(figs)}</div></section>'
        )
    for kind, frame in data.other_tasks.items():
        task = data.task_types.get(kind, kind)
        frame = frame.assign(**{c: frame[c].map(_unwrap) for c in frame.columns})
        fields = [
            c
            for c in frame.columns
            if c.startswith(f"{kind}.") and _result_field(c.split(".", 1)[1]) and _scalar(frame[c])
        ]
        first = [f"{kind}.{h}" for h in HEADLINE.get(task, ()) if f"{kind}.{h}" in fields]
        cols = {"structure_id": "structure", "formula_pretty": "formula"}
        cols |= {
            c: _with_unit(task, c.split(".", 1)[1]) for c in [*first, *[f for f in fields if f not in first]]
        }
        title = SECTION_TITLES.get(task, task)
        if kind != task:
            title += f", stage “{kind}”"
        parts.append(
            f'<section id="task-{esc(kind)}"><h2>{esc(title)} ({len(frame)} structures)</h2>'
            + html_table(frame.head(top), cols, f"{kind}-table")
            + "</section>"
        )
    body = "\n".join(parts)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>mlipflows report: {esc(data.campaign)}</title><style>{CSS}</style></head>"
        f"<body>{body}<script>{SORTER_JS}</script></body></html>"
    )


def _with_unit(task: str, name: str) -> str:
    """'min_frequency (THz)': a column header with its schema's unit, when it has one."""
    from mlipflows.schemas.units import field_unit

    unit = field_unit(task, name)
    return f"{name} ({unit})" if unit else name


def _funnel_item(s: Any) -> str:
    esc = html.escape
    bad = s.failed + s.unphysical
    if not s.ran:
        return f"<li>{esc(s.stage)} ({esc(s.kind)}) ← {esc(str(s.source))}: {esc(s.state)}</li>"
    text = f"{esc(s.stage)} ({esc(s.kind)}): {s.selected} selected, {s.successful} successful, "
    text += f"{s.passed} through its gate" + (f", {bad} failed or unphysical" if bad else "")
    text += "".join(f"<br><small>{n} × {esc(r)}</small>" for r, n in s.failure_reasons)
    return f"<li>{text}</li>"


def _result_field(name: str) -> bool:
    """A task's own result field, not identity/provenance every BaseDocument carries."""
    top = name.split(".")[0]
    return top in ("state", "error") or top not in BaseDocument.model_fields


def _unwrap(value: Any) -> Any:
    """A one-element list (κ at one temperature) is shown as its element."""
    if isinstance(value, list | tuple) and len(value) == 1 and not isinstance(value[0], list | dict):
        return value[0]
    return value


def _scalar(col: pd.Series) -> bool:
    """Columns that fit a table cell (numbers, text, flags; not arrays)."""
    sample = col.dropna()
    return sample.empty or not isinstance(sample.iloc[0], list | dict)


def build_report(store: JobStore, campaign: str, out_dir: str | Path, top: int = 50) -> Path:
    """Write ``out_dir/index.html`` and its figures; returns the page's path."""
    data = collect(store, campaign)  # fails before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {}
    if data.funnel:
        from mlipflows.report_funnel import funnel_svg

        figures["funnel"] = funnel_svg(data.funnel, out / "funnel.svg").name
    if data.surrogate is not None:
        from mlipflows.report_surrogate import parity_svg

        parity = parity_svg(data.hull, data.surrogate, out / "surrogate_parity.svg")
        figures["surrogate"] = parity.name if parity else None
    hist = histogram_svg(data.stability, out / "e_above_hull.svg")
    if hist is not None:
        figures["histogram"] = hist.name
    if len(data.stability):
        from mlipflows.report_context import systems_by_closeness

        systems, total = systems_by_closeness(data.stability, MAX_HULL_PLOTS)
        figures["hulls"] = hull_plots(store, campaign, systems, out)
        figures["hull_note"] = f"{len(systems)} of {total} chemical systems shown, closest to the hull first"
    page = render_html(data, figures, top, describe_store(store))
    path = out / "index.html"
    path.write_text(redact_uri(page), encoding="utf-8")
    return path
