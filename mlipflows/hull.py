"""Convex-hull stability from relaxed energies (pymatgen PhaseDiagram), per chemical system.

One phase diagram is built per candidate chemical system from the entries whose elements it
contains, so a campaign across many elements never needs one huge high-dimensional hull.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from mlipflows.energies import (
    formation_energy_per_atom,
    mp2020_correct,
    mp_chemical_potentials,
    mp_elemental_references,
    mp_like_entry,
)
from mlipflows.errors import MlipflowsError

log = logging.getLogger(__name__)

HullMode = Literal["mlip", "dft"]
MIN_FORMATION_ENERGY = -5.0  # eV/atom: below it a "compound" is a model hole (sanity.py)


class HullError(MlipflowsError):
    """The hull cannot be built (missing elemental references, no usable entries)."""


@dataclass
class RelaxedEntry:
    """A relaxed structure with its total energy (eV), as stored by a relax job.

    ``structure`` may be the stored dict: it is parsed only where a hull needs more than the
    composition (MP2020 corrections), since parsing thousands of structures costs more than
    the MLIP-consistent hull itself.
    """

    structure_id: str
    structure: Structure | dict
    energy: float
    converged: bool = True
    known_composition: Composition | None = None

    @property
    def composition(self) -> Composition:
        if self.known_composition is None:
            self.known_composition = self.pymatgen_structure.composition
        return self.known_composition

    @property
    def pymatgen_structure(self) -> Structure:
        if isinstance(self.structure, dict):
            self.structure = Structure.from_dict(self.structure)
        return self.structure


# Without another compound in the hull, e_above_hull only compares a candidate with its
# elements (and its own polymorphs): a ternary screened this way looks far more stable than it is.
NO_COMPETITOR = (
    "no compound of another composition in its chemical system or sub-systems is in the hull "
    "(only elements and polymorphs): e_above_hull is a lower bound; add compounds to "
    "hull.references or use hull mode dft"
)


@dataclass
class Stability:
    """Where one candidate sits relative to its hull."""

    structure_id: str
    formation_energy_per_atom: float | None = None
    e_above_hull: float | None = None
    is_stable: bool | None = None
    decomposition: list[dict] = field(default_factory=list)
    corrected_energy_per_atom: float | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    unphysical: bool = False  # the error is a failed sanity check: kept out of the hull


@dataclass
class HullResult:
    """Stabilities of the candidates, and the hull entries of every chemical system used.

    ``pools`` maps "A-B-C" to entries as {"formula", "energy" (eV, total), "entry_id",
    "candidate"}; candidates measured against a DFT hull are listed with ``candidate`` True.
    """

    stabilities: list[Stability]
    pools: dict[str, list[dict]]


def pool_entries(pools: dict[str, list[dict]], chemsys: str) -> list[PDEntry]:
    """PDEntries of one chemical system from :attr:`HullResult.pools` (for plots).

    Entries are named by their reduced formula (an element by its symbol), which is what the
    plot labels, not by their ids (``ref-Zn-fcc``).
    """
    out = []
    for e in pools[chemsys]:
        comp = Composition(e["formula"])
        entry = PDEntry(comp, e["energy"], name=comp.reduced_formula)
        entry.entry_id = e["entry_id"]
        out.append(entry)
    return out


def _decomposition(decomp: dict) -> list[dict]:
    return sorted(
        (
            {
                "formula": e.composition.reduced_formula,
                "fraction": float(frac),
                "entry_id": e.entry_id,
            }
            for e, frac in decomp.items()
        ),
        key=lambda d: -d["fraction"],
    )


def mlip_hull(
    candidates: Sequence[RelaxedEntry],
    references: Sequence[RelaxedEntry],
    min_formation_energy: float | None = MIN_FORMATION_ENERGY,
) -> HullResult:
    """MLIP-consistent stability: every energy (elements, references, candidates) from the MLIP.

    μ of each element is the lowest energy per atom among its relaxed elemental references
    (and any elemental candidates). Candidates enter the hull together with the references.
    A candidate whose formation energy against the references is below
    ``min_formation_energy`` (eV/atom; no known compound is below about −4.5) is a model hole:
    it is kept out of every hull and reported as unphysical (None: no check).
    """
    mu = _lowest_elemental(references)
    holes: list[Stability] = []
    sane: list[RelaxedEntry] = []
    for c in candidates:
        comp = c.composition
        if min_formation_energy is not None and all(el.symbol in mu for el in comp.elements):
            e_form = formation_energy_per_atom(comp, c.energy, mu)
            if e_form < min_formation_energy:
                holes.append(
                    Stability(
                        c.structure_id,
                        formation_energy_per_atom=e_form,
                        error=f"formation energy {e_form:.4g} eV/atom is below {min_formation_energy:g} "
                        "(no known compound is below ~4.5): a hole in the model's energy surface, "
                        "kept out of the hull",
                        unphysical=True,
                    )
                )
                continue
        sane.append(c)
    for el, e in _lowest_elemental(sane).items():
        mu[el] = min(mu.get(el, float("inf")), e)
    everything = [*references, *sane]
    entries = [PDEntry(r.composition, r.energy, name=r.structure_id) for r in everything]
    for e, r in zip(entries, everything, strict=True):
        e.entry_id = r.structure_id
    result = _stabilities(sane, entries, mu, include_candidates=True)
    result.stabilities += holes
    return result


def _lowest_elemental(entries: Sequence[RelaxedEntry]) -> dict[str, float]:
    """Lowest energy per atom of each element among the elemental ``entries``, eV/atom."""
    mu: dict[str, float] = {}
    for r in entries:
        if len(r.composition.elements) == 1:
            el = r.composition.elements[0].symbol
            mu[el] = min(mu.get(el, float("inf")), r.energy / r.composition.num_atoms)
    return mu


def dft_reference_hull(
    candidates: Sequence[RelaxedEntry], reference_entries: Sequence[ComputedEntry]
) -> HullResult:
    """DFT-reference stability: MP2020-corrected MLIP energies against DFT reference entries.

    Formation energies use the MP 2023-02-07 elemental references; the hull is built from the
    given reference entries plus those elemental references, and candidates are measured
    against it without entering it (negative e_above_hull = below the known hull).
    """
    mu = mp_chemical_potentials()
    refs = list(reference_entries) + list(mp_elemental_references().values())
    out_candidates = []
    corrected: dict[str, float] = {}
    rejected: dict[str, str] = {}
    for c in candidates:
        entry = mp2020_correct(mp_like_entry(c.pymatgen_structure, c.energy, c.structure_id))
        if entry is None:
            rejected[c.structure_id] = "MaterialsProject2020Compatibility rejected the entry"
            continue
        corrected[c.structure_id] = entry.energy
        out_candidates.append(c)
    result = _stabilities(out_candidates, refs, mu, include_candidates=False, energies=corrected)
    result.stabilities += [Stability(structure_id=sid, error=msg) for sid, msg in rejected.items()]
    return result


def _stabilities(
    candidates: Sequence[RelaxedEntry],
    hull_entries: Sequence,
    mu: dict[str, float],
    include_candidates: bool,
    energies: dict[str, float] | None = None,
) -> HullResult:
    by_chemsys: dict[frozenset[str], list[RelaxedEntry]] = {}
    for c in candidates:
        by_chemsys.setdefault(frozenset(el.symbol for el in c.composition.elements), []).append(c)
    # entries grouped by their own chemical system once: a pool then scans systems, not entries
    # (a 5,000-candidate campaign has ~1,000 pools over ~5,000 entries)
    entries_by_chemsys: dict[frozenset[str], list] = {}
    for e in hull_entries:
        entries_by_chemsys.setdefault(frozenset(el.symbol for el in e.composition.elements), []).append(e)
    results = []
    pools: dict[str, list[dict]] = {}
    for chemsys, members in by_chemsys.items():
        missing = sorted(chemsys - set(mu))
        if missing:
            for c in members:
                results.append(
                    Stability(
                        c.structure_id,
                        error=f"no elemental reference energy for {', '.join(missing)}",
                    )
                )
            continue
        pool = [e for sub, group in entries_by_chemsys.items() if sub <= chemsys for e in group]
        diagram = PhaseDiagram(pool)
        own = {e.entry_id: e for e in pool}
        member_ids = {c.structure_id for c in members}
        pools["-".join(sorted(chemsys))] = [
            {
                "formula": e.composition.formula,
                "energy": float(e.energy),
                "entry_id": getattr(e, "entry_id", None) or e.name,
                "candidate": (getattr(e, "entry_id", None) or e.name) in member_ids,
            }
            for e in pool
        ] + (
            []
            if include_candidates
            else [
                {
                    "formula": c.composition.formula,
                    "energy": float(energies[c.structure_id] if energies else c.energy),
                    "entry_id": c.structure_id,
                    "candidate": True,
                }
                for c in members
            ]
        )
        compounds = {e.composition.reduced_formula for e in pool if len(e.composition.elements) > 1}
        for c in members:
            energy = energies[c.structure_id] if energies else c.energy
            n = c.composition.num_atoms
            st = Stability(c.structure_id)
            st.formation_energy_per_atom = formation_energy_per_atom(c.composition, energy, mu)
            if energies:
                st.corrected_energy_per_atom = energy / n
            probe = own.get(c.structure_id) if include_candidates else None
            probe = probe or PDEntry(c.composition, energy, name=c.structure_id)
            decomp, e_hull = diagram.get_decomp_and_e_above_hull(probe, allow_negative=True)
            st.e_above_hull = float(e_hull)
            st.is_stable = bool(e_hull <= 1e-8)
            st.decomposition = _decomposition(decomp)
            if not c.converged:
                st.warnings.append("relaxation did not converge; energy is from the last step")
            if not compounds - {c.composition.reduced_formula}:
                st.warnings.append(NO_COMPETITOR)
            results.append(st)
    return HullResult(results, pools)
