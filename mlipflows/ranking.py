"""Crystal-structure ranking: polymorph candidates, duplicate merging, the ranking table.

Candidates come from (a) the prototype library (every prototype and decoration whose
stoichiometry matches), (b) random symmetric crystals from PyXtal (Fredericks et al., Comput.
Phys. Commun. 261, 107810 (2021)) over space groups and 1–4 formula units, seeded, and (c) user
files. After relaxation, structures that pymatgen's ``StructureMatcher`` finds equivalent are
merged (the lowest energy one represents the group) and the rest are ranked by energy per atom.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Structure

from mlipflows.errors import UnsupportedElementError
from mlipflows.io import Candidate
from mlipflows.potentials.base import Potential
from mlipflows.prototypes import prototypes_for_formula

log = logging.getLogger(__name__)

ALL_SPACEGROUPS = tuple(range(2, 231))  # P1 (1) adds nothing a relaxation of P-1 cannot find


@dataclass
class Generation:
    """What was generated and what was skipped (reproducible from ``seed``).

    ``random_misses`` are PyXtal draws that could not be placed (a normal part of random
    search); ``rejected_files`` are the user's own files that were unreadable or of another
    composition (a mistake to report)."""

    candidates: list[Candidate] = field(default_factory=list)
    random_misses: list[str] = field(default_factory=list)
    rejected_files: list[str] = field(default_factory=list)
    seed: int = 0

    @property
    def skipped(self) -> list[str]:
        return [*self.random_misses, *self.rejected_files]

    def counts(self) -> dict[str, int]:
        by_source: dict[str, int] = {}
        for c in self.candidates:
            by_source[c.source] = by_source.get(c.source, 0) + 1
        return by_source

    def record(self) -> dict[str, Any]:
        return {"seed": self.seed, "n_candidates": self.counts(), "skipped": self.skipped}

    def misses_line(self) -> str:
        """One line for the random draws that PyXtal could not place ('' when none)."""
        if not self.random_misses:
            return ""
        draws = [
            m.split(":")[0].removeprefix("space group ").replace(", Z=", " Z=") for m in self.random_misses
        ]
        shown = "; ".join(draws[:6]) + ("; …" if len(draws) > 6 else "")
        n_ok = self.counts().get("random", 0)
        return (
            f"random crystals: {n_ok} placed, after {len(draws)} draws that could not hold the composition "
            f"or that PyXtal gave up on (space group and formula units: {shown})"
        )


def check_elements(formula: str, potential: Potential) -> Composition:
    """The reduced composition of ``formula``; raises before any compute if the model lacks an element."""
    try:
        comp = Composition(formula).reduced_composition
    except Exception as exc:  # pymatgen raises ValueError or others on nonsense
        raise ValueError(f"cannot read formula {formula!r}: {exc}") from None
    # pymatgen reads an unknown symbol ("NaCL" → Na, C, L) as a dummy species, not an error
    unknown = [str(getattr(e, "symbol", e)) for e in comp.elements if type(e).__name__ != "Element"]
    if unknown:
        raise ValueError(
            f"{formula!r} is not a formula: {', '.join(unknown)} is not an element symbol "
            "(a capital letter and an optional lowercase one: Cl, not CL)"
        )
    missing = potential.unsupported_elements({el.symbol for el in comp.elements})
    if missing:
        raise UnsupportedElementError(
            f"{potential.name} does not cover {', '.join(missing)} (in {formula}); "
            f"choose a model that does (see `mlipflows models`)"
        )
    return comp


def prototype_candidates(formula: str) -> list[Candidate]:
    """One candidate per matching prototype decoration, e.g. ``proto-rutile-A=Ti,B=O``."""
    out = []
    matches = prototypes_for_formula(formula)
    for proto, deco in matches:
        n_same = sum(1 for p, _ in matches if p.name == proto.name)
        label = (
            proto.name if n_same == 1 else f"{proto.name}-" + ",".join(f"{k}={v}" for k, v in deco.items())
        )
        out.append(Candidate(f"proto-{label}", proto.build(deco), "prototype"))
    return out


def random_candidates(
    formula: str,
    n: int,
    seed: int = 0,
    spacegroups: Sequence[int] | None = None,
    max_formula_units: int = 4,
) -> tuple[list[Candidate], list[str]]:
    """Up to ``n`` random symmetric crystals (space group and Z = 1..``max_formula_units`` drawn at random).

    Returns the candidates and, for each failed draw, the reason (a space group whose Wyckoff
    positions cannot hold the composition, or a PyXtal failure); at most ``10 n`` draws.
    """
    from pyxtal import pyxtal

    comp = Composition(formula).reduced_composition
    els = [el.symbol for el in comp.elements]
    counts = [int(comp[el]) for el in els]
    groups = list(spacegroups or ALL_SPACEGROUPS)
    rng = np.random.default_rng(seed)
    out: list[Candidate] = []
    skipped: list[str] = []
    for _ in range(10 * n):
        if len(out) >= n:
            break
        sg, z = int(rng.choice(groups)), int(rng.integers(1, max_formula_units + 1))
        state = int(rng.integers(2**31))
        crystal = pyxtal()
        try:
            crystal.from_random(3, sg, els, [c * z for c in counts], random_state=state)
            if not crystal.valid:
                raise RuntimeError("PyXtal gave up placing the atoms")
            s = crystal.to_pymatgen().get_primitive_structure()
        except Exception as exc:  # PyXtal signals impossible compositions with its own errors
            reason = f"space group {sg}, Z={z}: {type(exc).__name__}: {exc}"
            log.info("skipped random candidate: %s", reason)
            skipped.append(reason)
            continue
        out.append(Candidate(f"random-{len(out):03d}-sg{sg}-z{z}", s, "random"))
    return out, skipped


def file_candidates(paths: Sequence[Path]) -> tuple[list[Candidate], dict[str, str]]:
    """User structures (CIF/POSCAR/extxyz) and, per unreadable file, the reason."""
    from mlipflows.io import read_many

    loaded, failed = read_many(list(paths))
    return [Candidate(f"file-{x.structure_id}", x.structure, "file") for x in loaded], failed


def generate(
    formula: str,
    n_random: int = 100,
    seed: int = 0,
    spacegroups: Sequence[int] | None = None,
    files: Sequence[Path] = (),
    prototypes: bool = True,
) -> Generation:
    """All candidates for ``formula``; files whose composition differs are skipped with a reason."""
    comp = Composition(formula).reduced_composition
    gen = Generation(seed=seed)
    if prototypes:
        gen.candidates += prototype_candidates(formula)
    rand, misses = random_candidates(formula, n_random, seed, spacegroups) if n_random > 0 else ([], [])
    gen.candidates += rand
    gen.random_misses += misses
    from_files, unreadable = file_candidates(files) if files else ([], {})
    gen.rejected_files += list(unreadable.values())
    for c in from_files:
        if c.structure.composition.reduced_composition != comp:
            gen.rejected_files.append(
                f"{c.structure_id.removeprefix('file-')}: its composition "
                f"{c.structure.composition.reduced_formula} is not {comp.reduced_formula}"
            )
        else:
            gen.candidates.append(c)
    return gen


@dataclass
class Relaxed:
    """A relaxed candidate: energy in eV (total), converged flag."""

    structure_id: str
    source: str
    structure: Structure
    energy: float
    converged: bool
    unphysical: str | None = None


def merge_duplicates(
    entries: Sequence[Relaxed], matcher: StructureMatcher | None = None
) -> list[list[Relaxed]]:
    """Groups of equivalent relaxed structures, each sorted by energy per atom (lowest first)."""
    matcher = matcher or StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True)
    per_atom = {id(e): e.energy / len(e.structure) for e in entries}
    groups: list[list[Relaxed]] = []
    # group within the same energy window only: equal structures have equal energies
    for e in sorted(entries, key=lambda x: per_atom[id(x)]):
        for g in groups:
            if abs(per_atom[id(g[0])] - per_atom[id(e)]) < 0.01 and matcher.fit(g[0].structure, e.structure):
                g.append(e)
                break
        else:
            groups.append([e])
    return groups


def ranking_table(groups: Sequence[Sequence[Relaxed]], symprec: float = 0.1) -> pd.DataFrame:
    """One row per distinct structure, lowest energy first; ΔE in meV/atom to the lowest."""
    rows = []
    for g in groups:
        best = g[0]
        s = best.structure
        try:
            symbol, number = s.get_space_group_info(symprec=symprec)
        except Exception:  # spglib can fail on badly distorted cells
            symbol, number = "?", 0
        rows.append(
            {
                "structure_id": best.structure_id,
                "source": best.source,
                "spacegroup": symbol,
                "spacegroup_number": number,
                "energy_per_atom": best.energy / len(s),
                "volume_per_atom": s.volume / len(s),
                "density": float(s.density),
                "nsites": len(s),
                "converged": best.converged,
                "unphysical": best.unphysical,
                "n_duplicates": len(g) - 1,
                "duplicates": [e.structure_id for e in g[1:]],
            }
        )
    frame = pd.DataFrame(rows).sort_values("energy_per_atom", kind="stable").reset_index(drop=True)
    # pandas turns a column of None and text into NaN and text; the documents want None
    frame["unphysical"] = frame["unphysical"].astype(object).where(frame["unphysical"].notna(), None)
    if len(frame):
        frame.insert(0, "rank", np.arange(1, len(frame) + 1))
        frame["delta_e_mev_per_atom"] = 1000 * (frame["energy_per_atom"] - frame["energy_per_atom"].min())
    return frame


def energy_volume_plot(frame: pd.DataFrame, title: str, path: Path, label_top: int = 8) -> None:
    """ΔE (meV/atom) vs volume per atom (Å³), marker by candidate source; the lowest ones labelled.

    The axes hold the bulk of the structures: a far outlier (an exotic, very high polymorph)
    sits on the edge as an arrow with its value instead of squashing everything else.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    de, vol = frame["delta_e_mev_per_atom"], frame["volume_per_atom"]
    e_hi = _robust_max(de, floor=50.0)
    v_lo, v_hi = _robust_range(vol)
    inside = de.le(e_hi) & vol.between(v_lo, v_hi)
    for source, marker in (("prototype", "s"), ("random", "o"), ("file", "^")):
        part = frame[(frame["source"] == source) & inside]
        if len(part):
            ax.scatter(
                part["volume_per_atom"], part["delta_e_mev_per_atom"], marker=marker, s=22, label=source
            )
    for _, row in frame[~inside].iterrows():  # outliers: an arrow at the edge, with the true value
        x = min(max(row["volume_per_atom"], v_lo), v_hi)
        y = min(row["delta_e_mev_per_atom"], e_hi)
        ax.annotate(
            f"{row['delta_e_mev_per_atom']:.0f} meV, {row['volume_per_atom']:.1f} Å³",
            (x, y),
            fontsize=6,
            color="#b03a2e",
            xytext=(-4, -10),
            textcoords="offset points",
            arrowprops={"arrowstyle": "->", "color": "#b03a2e"},
        )
    for _, row in frame[inside].head(label_top).iterrows():
        ax.annotate(
            row["spacegroup"],
            (row["volume_per_atom"], row["delta_e_mev_per_atom"]),
            fontsize=7,
            xytext=(3, 3),
            textcoords="offset points",
        )
    ax.set_ylim(-0.05 * e_hi, 1.08 * e_hi)
    ax.set_xlim(v_lo - 0.03 * (v_hi - v_lo + 1), v_hi + 0.03 * (v_hi - v_lo + 1))
    n_out = int((~inside).sum())
    note = f" ({n_out} off the scale)" if n_out else ""
    ax.set(xlabel="volume per atom (Å³)", ylabel="ΔE to lowest (meV/atom)", title=title + note)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _robust_max(values: pd.Series, floor: float) -> float:
    """Upper axis limit: all values unless a few are far above the rest (then the 90th pct × 1.5)."""
    v = values.dropna()
    if v.empty:
        return floor
    high = float(v.quantile(0.9)) * 1.5 if len(v) >= 5 else float(v.max())
    return max(floor, min(float(v.max()), high))


def _robust_range(values: pd.Series) -> tuple[float, float]:
    v = values.dropna()
    if len(v) < 5:
        return float(v.min()), float(v.max())
    q1, q3 = float(v.quantile(0.1)), float(v.quantile(0.9))
    span = q3 - q1
    return max(float(v.min()), q1 - 1.5 * span), min(float(v.max()), q3 + 1.5 * span)
