"""Training: readers, least-squares baselines, multi-head training, EMA/early stopping,
checkpoint → load_potential → engine relax, and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from typer.testing import CliRunner

from mlipflows.models.mpnice import MPNICE
from mlipflows.training import DatasetSpec, Sample, TrainConfig, read_extxyz, read_mlearn, train
from mlipflows.training.baseline import atom_coordinations, coordinations, fit_baseline

SMALL = Path(__file__).parents[1] / "data" / "training" / "si_mlearn_small.json.gz"
TINY = {"n_channels": 8, "n_angular": 4, "n_charge_features": 4, "n_radial": 4, "hidden": 8, "n_blocks": 1}


def test_mlearn_reader_units_and_extxyz_round_trip(tmp_path):
    samples = read_mlearn(SMALL, head="pbe")
    assert len(samples) == 6 and all(s.head == "pbe" for s in samples)
    s = samples[0]
    assert s.forces.shape == (s.n_atoms, 3) and s.stress.shape == (3, 3)
    assert np.allclose(s.stress, s.stress.T)
    assert -6.0 < s.energy / s.n_atoms < -4.0  # PBE Si, eV/atom
    frames = []
    for x in samples:
        a = x.atoms.copy()
        a.calc = SinglePointCalculator(a, energy=x.energy, forces=x.forces, stress=x.stress)
        frames.append(a)
    write(tmp_path / "si.extxyz", frames)
    back = read_extxyz(tmp_path / "si.extxyz", head="pbe")
    assert [b.energy for b in back] == pytest.approx([x.energy for x in samples])
    np.testing.assert_allclose(back[2].forces, samples[2].forces)
    np.testing.assert_allclose(back[2].stress, samples[2].stress, atol=1e-12)


def test_least_squares_baseline_recovers_e0_and_shift():
    """Energies built exactly as Σ n_Z E0_Z + shift · Σc/c̄ are fitted back exactly."""
    atoms = [bulk("NaCl", "rocksalt", a, cubic=True) for a in (5.4, 5.6, 5.9)]
    atoms += [bulk("Na", "bcc", 4.2) * (2, 1, 1), bulk("Cl", "fcc", 4.5)]
    e0 = {"Na": -1.3, "Cl": -0.4}
    model = MPNICE(elements=["Na", "Cl"], heads=["a", "b"], cutoff=4.0, **TINY)
    c_bar = float(model.readout.mean_coordination)
    coord = coordinations([Sample(a, 0.0) for a in atoms], 4.0)
    samples = []
    for head, shift in (("a", -0.25), ("b", 0.1)):
        for a, c in zip(atoms, coord, strict=True):
            energy = sum(e0[s] for s in a.get_chemical_symbols()) + shift * c / c_bar
            samples.append(Sample(a, energy, np.zeros((len(a), 3)) + 0.5, head=head))
    table = fit_baseline(model, samples, fit_shift=True)
    assert table["a"] == pytest.approx(e0, abs=1e-8) and table["b"] == pytest.approx(e0, abs=1e-8)
    assert model.readout.shift.tolist() == pytest.approx([-0.25, 0.1], abs=1e-8)
    assert model.readout.scale.tolist() == pytest.approx([0.5, 0.5])


def test_element_shifts_fit_cohesive_energy_and_keep_the_isolated_atoms():
    """With E0 fixed at the isolated atoms, one per-neighbour shift per element is fitted back
    (to the ridge's precision) and a lone atom still returns exactly its E0."""
    from ase import Atoms

    from mlipflows.engine import Batch
    from mlipflows.models.potential import predict

    atoms = [bulk("NaCl", "rocksalt", a, cubic=True) for a in (5.4, 5.6, 5.9)]
    atoms += [bulk("Na", "bcc", 4.2) * (2, 1, 1), bulk("Cl", "fcc", 4.5), bulk("Na", "fcc", 5.0)]
    e0 = {"Na": -1.3, "Cl": -0.4}
    per_neighbour = {"Na": -0.12, "Cl": -0.05}  # eV per unit of coordination
    model = MPNICE(elements=["Na", "Cl"], heads=["a"], cutoff=4.0, **TINY)
    c_bar = float(model.readout.mean_coordination)
    samples = []
    for a, c in zip(atoms, atom_coordinations([Sample(a, 0.0) for a in atoms], 4.0), strict=True):
        symbols = a.get_chemical_symbols()
        energy = sum(e0[s] + per_neighbour[s] * ci for s, ci in zip(symbols, c, strict=True))
        samples.append(Sample(a, energy, np.zeros((len(a), 3)) + 0.5, head="a"))
    table = fit_baseline(model, samples, fixed_e0={"a": e0}, fit_shift="element")
    assert table["a"] == pytest.approx(e0)
    fitted = model.readout.shift_z[0, [11, 17]].tolist()
    assert fitted == pytest.approx([per_neighbour["Na"] * c_bar, per_neighbour["Cl"] * c_bar], rel=1e-2)
    lone = Batch.from_atoms([Atoms("Na", positions=[[0, 0, 0]], pbc=False)], dtype=torch.float64)
    assert float(predict(model.double(), lone).energy[0]) == pytest.approx(e0["Na"], abs=1e-6)


def _config(tmp_path: Path, **kw: object) -> TrainConfig:
    base = dict(
        model=dict(TINY, cutoff=4.0),
        datasets=[
            DatasetSpec(path=SMALL, head="pbe", validation_fraction=0.34),
            DatasetSpec(path=SMALL, head="other", weight=0.5, validation_fraction=0.0, limit=2),
        ],
        epochs=3,
        batch_size=2,
        lr=5e-3,
        warmup_steps=0,
        output=tmp_path / "m.pt",
    )
    base.update(kw)
    return TrainConfig(**base)


def test_multi_head_training_checkpoint_loads_and_relaxes(tmp_path):
    from mlipflows.engine import RelaxSettings, relax
    from mlipflows.potentials import clear_cache, load_potential

    result = train(_config(tmp_path), show_progress=False)
    assert result.checkpoint.is_file() and len(result.history) == 3
    content = torch.load(result.checkpoint, weights_only=True)
    assert content["training"]["datasets"][0]["head"] == "pbe"
    assert content["config"]["heads"] == ["pbe", "other"]
    clear_cache()
    pot = load_potential(str(result.checkpoint))
    structure = read_mlearn(SMALL)[0].atoms
    from pymatgen.io.ase import AseAtomsAdaptor

    start = AseAtomsAdaptor.get_structure(structure)
    out = relax([start], pot, RelaxSettings(fmax=0.1, max_steps=40, cell_filter="fixed"))[0]
    assert out.error is None and np.isfinite(out.energy)
    from mlipflows.engine import Batch

    e_start = float(pot.evaluate(Batch.from_structures([start])).energy[0])
    assert out.energy <= e_start + 1e-6  # FIRE went downhill on the trained surface
    clear_cache()


def test_training_reduces_the_loss_and_stops_early(tmp_path):
    result = train(
        _config(tmp_path, epochs=4, datasets=[DatasetSpec(path=SMALL, validation_fraction=0.34)]), False
    )
    losses = [h["train_forces"] for h in result.history]
    assert losses[-1] < losses[0]
    written = json.loads(result.checkpoint.with_name(f"{result.checkpoint.stem}-history.json").read_text())
    assert [h["train_forces"] for h in written["history"]] == losses  # the curve, next to the model
    assert written["metadata"]["best_epoch"] == result.best_epoch
    frozen = train(_config(tmp_path, lr=1e-12, patience=1, epochs=10, ema_decay=0.0), show_progress=False)
    assert frozen.stopped == "early_stopping" and len(frozen.history) <= 3


def test_train_and_model_errors_cli(tmp_path):
    from mlipflows.cli import app

    cfg = tmp_path / "t.yaml"
    cfg.write_text(
        f"model: {{n_channels: 8, n_angular: 4, n_radial: 4, hidden: 8, n_blocks: 1, cutoff: 4.0}}\n"
        f"datasets:\n  - {{path: {SMALL}, validation_fraction: 0.34}}\n"
        f"epochs: 1\nbatch_size: 2\noutput: {tmp_path / 'cli.pt'}\n"
    )
    run = CliRunner().invoke(app, ["train", str(cfg), "--quiet"])
    assert run.exit_code == 0, run.output
    assert (tmp_path / "cli.pt").is_file() and "validation: E MAE" in run.output
    run = CliRunner().invoke(app, ["model-errors", str(tmp_path / "cli.pt"), str(SMALL), "--json"])
    assert run.exit_code == 0, run.output
    assert '"force_mae_ev_a"' in run.output
    bad = CliRunner().invoke(app, ["train", str(tmp_path / "missing.yaml")])
    assert bad.exit_code == 2
