"""Phonon band structure + DOS and κ(T) figures from stored documents (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_bands_dos(doc: dict[str, Any], path: Path) -> None:
    """Band structure (THz along the seekpath path) beside the total DOS of one PhononDocument."""
    plt = _pyplot()
    band, dos = doc["band_structure"], doc["dos"]
    fig, (ax_b, ax_d) = plt.subplots(
        1, 2, figsize=(7.5, 4), sharey=True, gridspec_kw={"width_ratios": [3, 1], "wspace": 0.08}
    )
    ticks: dict[float, list[str]] = {}  # x → labels there ("U|K" where the path jumps)
    seg_labels = band.get("labels") or []
    for k, (dist, freqs) in enumerate(zip(band["distances"], band["frequencies"], strict=True)):
        dist, freqs = np.asarray(dist), np.asarray(freqs)
        ax_b.plot(dist, freqs, color="tab:blue", lw=1)
        ends = seg_labels[2 * k : 2 * k + 2] if len(seg_labels) == 2 * len(band["distances"]) else ["", ""]
        for x, lab in zip((dist[0], dist[-1]), ends, strict=True):
            names = ticks.setdefault(round(float(x), 6), [])
            if lab not in names:
                names.append(lab)
    for x in ticks:
        ax_b.axvline(x, color="0.7", lw=0.5)
    ax_b.axhline(0, color="k", lw=0.5)
    ax_b.set_xticks(list(ticks), ["|".join(n for n in names if n) for names in ticks.values()])
    ax_b.set_xlim(min(ticks), max(ticks))
    # phonopy's DOS grid runs past both ends of the spectrum; the bands set the range
    every = np.concatenate([np.ravel(f) for f in band["frequencies"]])
    low, high = min(float(np.nanmin(every)), 0.0), float(np.nanmax(every))
    pad = 0.03 * (high - low or 1.0)
    ax_b.set_ylim(low - pad, high + pad)
    ax_b.set_ylabel("frequency (THz)")
    title = f"{doc['formula_pretty']} — {doc['model']['name']}"
    if doc.get("has_imaginary_modes"):
        title += " (imaginary modes)"
    ax_b.set_title(title, fontsize=10)
    ax_d.plot(dos["dos"], dos["frequencies"], color="tab:blue", lw=1)
    ax_d.set_xlabel("DOS (states/THz)")
    ax_d.set_xlim(left=0)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def plot_kappa(docs: list[dict[str, Any]], path: Path) -> str:
    """κ_TOT (mean of xx, yy, zz; W/(m·K)) against temperature, one line per document; at a
    single temperature (a line of one point says nothing), bars of κ_P + κ_C per structure.
    Returns which: "lines" or "bars"."""
    plt = _pyplot()
    docs = [d for d in docs if d.get("kappa_tot_avg")]
    temps = {tuple(d["temperatures"]) for d in docs}
    if len(temps) == 1 and len(next(iter(temps))) == 1:
        _kappa_bars(plt, docs, path)
        return "bars"
    fig, ax = plt.subplots(figsize=(4.5, 3.5))
    for doc in docs:
        label = f"{doc['structure_id']} ({doc['formula_pretty']})"
        ax.plot(doc["temperatures"], doc["kappa_tot_avg"], "o-", label=label)
    ax.set(xlabel="temperature (K)", ylabel="κ (W/m·K)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return "lines"


def _kappa_bars(plt: Any, docs: list[dict[str, Any]], path: Path) -> None:
    """κ_P (particle) and κ_C (coherences) stacked per structure, at the one temperature."""
    labels = [f"{d['structure_id']}\n{d['formula_pretty']}" for d in docs]
    k_p = [sum(d["kappa_p_rta"][0][:3]) / 3 for d in docs]
    k_c = [sum(d["kappa_c"][0][:3]) / 3 if d.get("kappa_c") else 0.0 for d in docs]
    fig, ax = plt.subplots(figsize=(max(3.5, 0.8 * len(docs) + 1.5), 3.5))
    x = range(len(docs))
    ax.bar(x, k_p, color="#24507a", label="κ_P")
    ax.bar(x, k_c, bottom=k_p, color="#7fa3cc", label="κ_C")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.set(ylabel="κ (W/m·K)", title=f"κ at {docs[0]['temperatures'][0]:g} K (mean of xx, yy, zz)")
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
