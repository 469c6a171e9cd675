"""D3 dispersion through torch-dftd on our batched geometry: the same numbers as torch-dftd's
own ASE calculator (its own neighbour list), conservative and extensive, and usable both as an
MPNICE term and as a ``MODEL+d3`` load spec."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from ase.units import Bohr
from torch_dftd.torch_dftd3_calculator import TorchDFTD3Calculator

from mlipflows.engine import Batch
from mlipflows.errors import ModelLoadError
from mlipflows.models.dispersion import D3Dispersion
from mlipflows.models.geometry import forces_and_stress, strained
from mlipflows.models.potential import predict
from mlipflows.potentials import load_potential
from tests.models.conftest import tiny_mpnice

F64 = torch.float64


def _systems() -> list[Atoms]:
    salt = bulk("NaCl", "rocksalt", a=5.64).repeat((2, 1, 1))
    salt.rattle(0.05, seed=1)
    cell = salt.get_cell()
    cell[0, 1] += 0.2  # triclinic
    salt.set_cell(cell, scale_atoms=False)
    methane = molecule("CH4")
    methane.center(vacuum=5.0)
    methane.pbc = False
    return [salt, bulk("Si", "diamond", a=5.43), methane]


def _d3(layer: D3Dispersion, atoms_list: list[Atoms]):
    pos, cell, inputs = strained(Batch.from_atoms(atoms_list, dtype=F64))
    batch = Batch.from_atoms(atoms_list, dtype=F64)
    energy = layer.energy(Batch(pos, batch.atomic_numbers, batch.system_idx, cell, batch.pbc))
    forces, stress = forces_and_stress(energy, inputs)
    return energy.detach().numpy(), forces.numpy(), stress.numpy()


def test_matches_torch_dftd_calculator_on_a_mixed_batch():
    atoms_list = _systems()
    energy, forces, stress = _d3(D3Dispersion(), atoms_list)
    start = 0
    for k, atoms in enumerate(atoms_list):
        ref = atoms.copy()
        ref.calc = TorchDFTD3Calculator(
            atoms=ref,
            damping="bj",
            xc="pbe",
            cutoff=40 * Bohr,
            cnthr=20 * Bohr,
            dtype=F64,
            cutoff_smoothing="poly",
        )
        stop = start + len(atoms)
        assert energy[k] == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        assert energy[k] < -0.01  # dispersion binds
        np.testing.assert_allclose(forces[start:stop], ref.get_forces(), atol=1e-10)
        if atoms.pbc.all():
            np.testing.assert_allclose(stress[k], ref.get_stress(voigt=False), atol=1e-10)
        start = stop
    assert np.abs(forces).max() > 1e-3  # rattled salt: not a check on vanishing forces


def test_forces_are_energy_gradients_and_supercells_extensive():
    layer = D3Dispersion(cutoff=12.0, cn_cutoff=8.0)
    salt = _systems()[0]
    _, forces, _ = _d3(layer, [salt])
    h = 1e-5
    for atom, axis in [(0, 0), (2, 1)]:
        plus, minus = salt.copy(), salt.copy()
        plus.positions[atom, axis] += h
        minus.positions[atom, axis] -= h
        fd = -(_d3(layer, [plus])[0][0] - _d3(layer, [minus])[0][0]) / (2 * h)
        assert forces[atom, axis] == pytest.approx(fd, abs=1e-7)
    e1, f1, s1 = _d3(layer, [salt])
    e2, f2, s2 = _d3(layer, [salt * (1, 2, 2)])
    assert e2[0] == pytest.approx(4 * e1[0], rel=1e-9)
    np.testing.assert_allclose(f2, np.tile(f1, (4, 1)), atol=1e-9)
    np.testing.assert_allclose(s2, s1, atol=1e-10)


def test_mpnice_adds_d3_without_storing_its_tables():
    plain, with_d3 = tiny_mpnice(), tiny_mpnice(dispersion="pbe")
    assert set(plain.state_dict()) == set(with_d3.state_dict())
    atoms = bulk("NaCl", "rocksalt", a=5.64, cubic=True)
    atoms.rattle(0.05, seed=2)
    batch = Batch.from_atoms([atoms], dtype=F64)
    difference = predict(with_d3, batch).energy - predict(plain, batch).energy
    expected = _d3(with_d3.dispersion, [atoms])[0]
    assert float(difference[0].detach()) == pytest.approx(float(expected[0]), abs=1e-9)


def test_load_spec_adds_d3_to_any_potential(monkeypatch):
    import mlipflows.potentials.dispersion as wrapper

    monkeypatch.setattr(wrapper, "D3_CHUNK_ATOMS", 3)  # several D3 calls per batch
    base = load_potential("morse", dtype=F64)
    corrected = load_potential("morse+d3", dtype=F64)
    assert corrected.name == "morse+d3" and "D3(BJ, pbe)" in corrected.card.source
    assert corrected.card.checksum != base.card.checksum  # stored results must not collide
    atoms_list = _systems()[:2]
    atoms_list[1].rattle(0.05, seed=4)
    batch = Batch.from_atoms(atoms_list, dtype=F64)
    out, ref = corrected.evaluate(batch), base.evaluate(batch)
    energy, forces, stress = _d3(D3Dispersion(), atoms_list)
    np.testing.assert_allclose((out.energy - ref.energy).numpy(), energy, atol=1e-9)
    np.testing.assert_allclose((out.forces - ref.forces).numpy(), forces, atol=1e-9)
    np.testing.assert_allclose((out.stress - ref.stress).numpy(), stress, atol=1e-10)
    with pytest.raises(ModelLoadError, match="no D3"):
        load_potential("morse+d3:not-a-functional")
    with pytest.raises(ModelLoadError, match="MODEL\\+d3"):
        load_potential("morse+d3x")


@pytest.mark.slow
def test_d3_binds_graphite_layers_with_sevennet():
    """SevenNet-0 (PBE data) barely binds graphite; +D3 gives the experimental c = 6.71 Å."""
    from pymatgen.core import Lattice, Structure

    from mlipflows.engine import RelaxSettings, relax

    coords = [[0, 0, 0.25], [0, 0, 0.75], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]]
    graphite = Structure(Lattice.hexagonal(2.46, 7.5), ["C"] * 4, coords)
    c = {}
    for spec in ("sevennet-0", "sevennet-0+d3"):
        out = relax([graphite], load_potential(spec), RelaxSettings(fmax=0.01, max_steps=500))[0]
        assert out.error is None and out.converged
        assert out.structure.lattice.a == pytest.approx(2.46, rel=0.01)  # in-plane bonds untouched
        c[spec] = out.structure.lattice.c
    assert c["sevennet-0"] > 7.5
    assert c["sevennet-0+d3"] == pytest.approx(6.71, rel=0.025)
