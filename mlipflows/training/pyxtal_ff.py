"""Reader for the PyXtal_FF training-set JSON (e.g. ``pyxtal-si-polymorphs/Si8.json.gz``).

Each entry holds ``lattice`` and fractional ``coords`` (monty-encoded numpy arrays: a dict with
``data``), ``elements``, the total ``energy`` (eV) and ``force`` (eV/Å); no stress. A separate
DFT data set (its own code settings) of random symmetric polymorphs, used here as the new data
set of multi-head fine-tuning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from monty.io import zopen

from mlipflows.errors import DataNotFoundError, StructureReadError
from mlipflows.training.data import Sample


def _array(value: Any) -> np.ndarray:
    """A monty-encoded numpy array ({"@module": "numpy", "data": ...}) or a plain list."""
    return np.asarray(value["data"] if isinstance(value, dict) else value, dtype=float)


def read_pyxtal_ff(path: str | Path, head: str = "default", weight: float = 1.0) -> list[Sample]:
    """Samples (periodic, energy + forces) of a PyXtal_FF JSON(.gz) list."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such PyXtal_FF JSON file")
    with zopen(path, "rt") as f:
        docs = json.load(f)
    out = []
    for k, doc in enumerate(docs):
        try:
            atoms = Atoms(
                symbols=list(doc["elements"]),
                scaled_positions=_array(doc["coords"]),
                cell=_array(doc["lattice"]),
                pbc=True,
            )
            forces = _array(doc["force"]).reshape(len(atoms), 3)
            out.append(
                Sample(atoms, float(doc["energy"]), forces, None, head, 0.0, weight, doc.get("formula", ""))
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise StructureReadError(f"{path} entry {k}: not a PyXtal_FF document ({exc})") from exc
    return out
