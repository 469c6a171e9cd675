"""DFT reference entries for the dft hull mode: a user file, or the Materials Project API."""

from __future__ import annotations

import json
import os
from pathlib import Path

from monty.io import zopen
from monty.json import MontyDecoder
from pymatgen.entries.computed_entries import ComputedEntry

from mlipflows.hull import HullError


def load_reference_entries(path: Path) -> list[ComputedEntry]:
    """ComputedEntries from a JSON (or .json.gz) list or dict of serialized entries."""
    if not path.is_file():
        raise HullError(f"reference entries file {path} does not exist")
    try:
        with zopen(path, "rt") as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as exc:
        raise HullError(f"{path}: not a JSON file of ComputedEntries ({exc})") from exc
    items = list(raw.values()) if isinstance(raw, dict) else raw
    entries = [MontyDecoder().process_decoded(d) for d in items]
    bad = [type(e).__name__ for e in entries if not isinstance(e, ComputedEntry)]
    if bad:
        raise HullError(f"{path}: expected ComputedEntry dicts, found {sorted(set(bad))}")
    return entries


def fetch_mp_entries(elements: set[str]) -> list[ComputedEntry]:
    """MP entries of every sub-system of ``elements`` (needs MP_API_KEY and network access)."""
    key = os.environ.get("MP_API_KEY")
    if not key:
        raise HullError(
            "hull mode dft needs reference entries: set hull.reference_entries to a JSON file "
            "of ComputedEntries, or set MP_API_KEY to fetch them from the Materials Project"
        )
    try:
        from mp_api.client import MPRester

        with MPRester(key) as mpr:
            return list(mpr.get_entries_in_chemsys(sorted(elements)))
    except Exception as exc:  # network down, bad key, server error: all end the same way
        raise HullError(
            f"could not fetch reference entries from the Materials Project ({type(exc).__name__}: "
            f"{str(exc)[:200]}); give hull.reference_entries as a file instead"
        ) from exc
