"""A collapsing cell is stopped with a reason instead of filling the memory of a campaign."""

from __future__ import annotations

import torch
from pymatgen.core import Lattice, Structure

from mlipflows.engine import RelaxSettings, relax
from tests.helpers import SqueezesXe


def test_collapsing_cell_is_stopped_with_a_reason_and_the_rest_relaxes():
    pot = SqueezesXe(device="cpu", dtype=torch.float64)
    xe = Structure(Lattice.cubic(5.6), ["Xe", "Cl"] * 4, _rocksalt_coords())
    nacl = Structure(Lattice.cubic(5.6), ["Na", "Cl"] * 4, _rocksalt_coords())
    settings = RelaxSettings(fmax=0.05, max_steps=2000)
    squeezed, fine = relax([xe, nacl], pot, settings)

    assert squeezed.state == "unphysical" and squeezed.error is None
    assert squeezed.unphysical.startswith("cell collapsed after"), squeezed.unphysical
    assert "Å³/atom" in squeezed.unphysical and squeezed.n_steps < settings.max_steps
    # the collapsed cell and its last energy are kept for the user to look at
    assert squeezed.structure.volume < 0.5 * xe.volume
    assert squeezed.energy == squeezed.trajectory[-1]
    assert fine.ok and fine.converged and fine.error is None
    # the stop is at the volume floor: one step past it at most
    assert squeezed.trajectory and len(squeezed.trajectory) == squeezed.n_steps


def test_a_fixed_cell_is_never_stopped_as_collapsed():
    pot = SqueezesXe(device="cpu", dtype=torch.float64)
    xe = Structure(Lattice.cubic(5.6), ["Xe", "Cl"] * 4, _rocksalt_coords())
    (r,) = relax([xe], pot, RelaxSettings(fmax=0.05, max_steps=50, cell_filter="fixed"))
    assert r.error is None and r.structure.volume == xe.volume


def _rocksalt_coords() -> list[list[float]]:
    fcc = [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]
    return [c for a in fcc for c in (a, [(x + 0.5) % 1 for x in a])]
