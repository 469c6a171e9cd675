"""The PyXtal_FF JSON reader on two real Si8 entries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlipflows.errors import DataNotFoundError
from mlipflows.training.pyxtal_ff import read_pyxtal_ff

DATA = Path(__file__).parents[1] / "data" / "training" / "pyxtal_si8_two.json"


def test_reads_energy_forces_and_periodic_cells():
    samples = read_pyxtal_ff(DATA, head="pyxtal")
    assert len(samples) == 2
    s = samples[0]
    assert s.head == "pyxtal" and s.n_atoms == 8 and s.atoms.get_chemical_formula() == "Si8"
    assert s.energy == pytest.approx(-34.82822469)
    assert s.atoms.pbc.all() and s.stress is None
    # DFT forces of a periodic cell sum to ~0 (a wrong reshape or unit would not)
    for sample in samples:
        assert np.abs(sample.forces.sum(0)).max() < 1e-2 < np.abs(sample.forces).max()
    # fractional coordinates were used: Si–Si distances are physical (> 2 Å)
    d = s.atoms.get_all_distances(mic=True)
    assert d[d > 0].min() > 2.0


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="no such PyXtal_FF"):
        read_pyxtal_ff(tmp_path / "nope.json")
