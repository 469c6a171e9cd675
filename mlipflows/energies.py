"""Entries, MP2020 corrections and formation energies (pymatgen does the physics).

MLIP energies are trained on MP GGA/GGA+U data, so to compare them with MP entries they get
the parameters MP would have used for the same composition (GGA+U with MP's U values for
oxides/fluorides of the U elements, else GGA) and then ``MaterialsProject2020Compatibility``.
POTCAR checks are skipped (there is no POTCAR behind an MLIP energy).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

from monty.io import zopen
from monty.json import MontyDecoder
from pymatgen.core import Composition, Structure
from pymatgen.entries.compatibility import MaterialsProject2020Compatibility
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

MP_ELEMENTAL_REFS = (
    Path(__file__).parent
    / "data"
    / "mp_elemental_refs"
    / ("2023-02-07-mp-elemental-reference-entries.json.gz")
)


@cache
def _compatibility() -> MaterialsProject2020Compatibility:
    return MaterialsProject2020Compatibility(check_potcar=False)


def mp_parameters(composition: Composition) -> dict:
    """run_type / hubbards that MP's input sets assign to ``composition``."""
    compat = _compatibility()
    anion = max(composition.elements, key=lambda el: el.X).symbol
    u_table = compat.u_settings.get(anion, {})
    hubbards = {el.symbol: float(u_table.get(el.symbol, 0.0)) for el in composition.elements}
    is_hubbard = any(u > 0 for u in hubbards.values())
    return {
        "run_type": "GGA+U" if is_hubbard else "GGA",
        "is_hubbard": is_hubbard,
        "hubbards": hubbards if is_hubbard else {},
    }


def mp_like_entry(structure: Structure, energy: float, entry_id: str) -> ComputedStructureEntry:
    """A ComputedStructureEntry for an MLIP (or DFT) total energy in eV, with MP parameters."""
    return ComputedStructureEntry(
        structure, energy, parameters=mp_parameters(structure.composition), entry_id=entry_id
    )


def mp2020_correct(entry: ComputedStructureEntry) -> ComputedStructureEntry | None:
    """The entry with MP2020 energy adjustments, or None when MP2020 rejects it."""
    # pymatgen warns per entry when it cannot guess oxidation states; the correction then
    # simply has no oxidation-state-dependent terms, which is MP's own behaviour
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _compatibility().process_entry(entry, inplace=False)


@cache
def mp_elemental_references() -> dict[str, ComputedEntry]:
    """MP 2023-02-07 elemental reference entries (already MP2020-compatible), by symbol."""
    with zopen(MP_ELEMENTAL_REFS, "rt") as f:
        raw = json.load(f)
    return {el: MontyDecoder().process_decoded(d) for el, d in raw.items()}


def formation_energy_per_atom(
    composition: Composition, energy: float, chemical_potentials: dict[str, float]
) -> float:
    """(E − Σ n_i μ_i) / N, with μ_i in eV/atom; raises KeyError for a missing element."""
    n = composition.num_atoms
    ref = sum(amt * chemical_potentials[el.symbol] for el, amt in composition.items())
    return (energy - ref) / n


def mp_chemical_potentials() -> dict[str, float]:
    """eV/atom of the MP elemental references (the DFT-reference formation-energy zero)."""
    return {el: e.energy_per_atom for el, e in mp_elemental_references().items()}
