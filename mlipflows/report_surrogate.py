"""The report's surrogate section: who decided, the margin, and student-vs-teacher parity."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from mlipflows.campaign.surrogate import COSTLY_CHECK


@dataclass
class SurrogateSummary:
    """A surrogate campaign's numbers as its summary documents recorded them."""

    margin: float | None = None
    threshold: float | None = None
    n_labelled: int = 0
    n_checked: int = 0
    n_teacher: int = 0
    n_student: int = 0
    calibration_mae: float | None = None
    finetune: dict[str, Any] = field(default_factory=dict)


def is_surrogate(frame: pd.DataFrame) -> bool:
    return "stage" in frame and bool((frame["stage"] == "screen").any())


def decisive_relaxations(frame: pd.DataFrame, hull: pd.DataFrame) -> pd.DataFrame:
    """The relax documents a surrogate campaign's hull used (one per candidate) plus the
    teacher's references: the student's and the labelling's other relaxations are not counted."""
    relax = frame[frame["task_type"] == "relax"]
    used = set(hull.get("relax_uuid", pd.Series(dtype=object)).dropna())
    tags = relax["tags"].map(lambda t: list(t) if isinstance(t, list | np.ndarray) else [])
    reference = (relax["stage"] == "label") & tags.map(lambda t: "reference" in t)
    return relax[relax["uuid"].isin(used) | reference]


def summarize(frame: pd.DataFrame, hull: pd.DataFrame) -> SurrogateSummary:
    docs = frame[frame["task_type"] == "surrogate"]
    out = SurrogateSummary()
    for row in docs.to_dict("records"):
        if row.get("stage") == "check":
            out.margin, out.threshold = row.get("margin"), row.get("threshold")
            out.n_labelled, out.n_checked = int(row.get("n_labelled") or 0), int(row.get("n_checked") or 0)
            out.calibration_mae = row.get("calibration_mae")
        elif row.get("stage") == "finetune":
            out.finetune = row
    decided = hull.get("decided_by", pd.Series(dtype=object))
    out.n_teacher, out.n_student = int((decided == "teacher").sum()), int((decided == "student").sum())
    return out


def parity_svg(hull: pd.DataFrame, summary: SurrogateSummary, path: Path) -> Path | None:
    """Student vs teacher e_above_hull of every candidate the teacher relaxed after the screen."""
    if "student_e_above_hull" not in hull or "decided_by" not in hull:
        return None
    rows = hull[(hull["decided_by"] == "teacher")].dropna(subset=["student_e_above_hull", "e_above_hull"])
    if not len(rows):
        return None
    x, y = rows["student_e_above_hull"].astype(float), rows["e_above_hull"].astype(float)
    fig, ax = plt.subplots(figsize=(5, 5))
    lo, hi = min(x.min(), y.min(), 0.0), max(x.max(), y.max(), 0.1)
    ax.plot([lo, hi], [lo, hi], color="#888888", lw=1)
    ax.scatter(x, y, s=12, color="#3b6ea8", alpha=0.7, label=f"teacher-decided ({len(rows)})")
    if summary.threshold is not None:
        ax.axhline(summary.threshold, color="#b03a2e", lw=1, ls="--", label="threshold")
        if summary.margin is not None:
            ax.axvline(
                summary.threshold + summary.margin, color="#d68910", lw=1, ls=":", label="threshold + margin"
            )
    ax.set_xlabel("student E above hull (eV/atom)")
    ax.set_ylabel("final (teacher) E above hull (eV/atom)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg")
    plt.close(fig)
    return path


def surrogate_html(summary: SurrogateSummary, figure: str | None) -> str:
    esc = html.escape
    margin = "–" if summary.margin is None else f"{summary.margin:.3f}"
    calib = (
        "" if summary.calibration_mae is None else f" (calibration MAE {summary.calibration_mae:.3f} eV/atom)"
    )
    tune = summary.finetune
    tuned = ""
    if tune:
        forget = tune.get("forgetting") or {}
        before, after = forget.get("before") or {}, forget.get("after") or {}
        tuned = (
            f"<li>student fine-tuned on {tune.get('n_train_labels')} teacher labels with "
            f"{tune.get('n_replay')} replayed base structures, {tune.get('epochs_run')} epochs</li>"
        )
        if before and after:
            tuned += (
                f"<li>forgetting on the base held-out set: {before['energy_mae_mev_atom']:.1f} → "
                f"{after['energy_mae_mev_atom']:.1f} meV/atom</li>"
            )
    img = f'<img src="{esc(figure)}" alt="student vs teacher parity">' if figure else ""
    costly = ""
    screened = summary.n_teacher + summary.n_student
    if screened and summary.n_checked / screened > COSTLY_CHECK:
        costly = (
            f'<p class="banner">The margin sent {summary.n_checked / screened:.0%} of the candidates back '
            "to the teacher: on this chemistry the student is too far from the teacher for the "
            "surrogate to save time. A better student (mlipflows distill, longer or on a GPU) "
            "narrows the margin.</p>"
        )
    return (
        '<section id="surrogate"><h2>Surrogate screen</h2>'
        f"{costly}<ul>"
        f"<li>{summary.n_labelled} candidates labelled by the teacher first; "
        f"{summary.n_checked} re-relaxed by the teacher after the student's screen</li>"
        f"<li>margin {margin} eV/atom{esc(calib)}</li>"
        f"<li>decided by the teacher: {summary.n_teacher}; by the student: {summary.n_student}</li>"
        f"{tuned}</ul>{img}</section>"
    )
