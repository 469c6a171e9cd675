"""Multi-head replay fine-tuning on tiny data: head surgery keeps predictions, FPS and element
filters select what they claim, and a fine-tuned new head learns its level of theory."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from ase.calculators.lj import LennardJones
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from mlipflows.engine import Batch
from mlipflows.errors import ModelLoadError
from mlipflows.models.checkpoint import load_model
from mlipflows.models.potential import predict
from mlipflows.potentials import clear_cache, load_potential
from mlipflows.training import DatasetSpec, TrainConfig, train
from mlipflows.training.data import Sample
from mlipflows.training.metrics import errors
from mlipflows.training.replay import (
    FineTuneConfig,
    add_head,
    element_filter,
    extract_head,
    farthest_point_sampling,
    fine_tune,
    select_replay,
)
from tests.models.tiny_equivariant import tiny_geodite

F64 = torch.float64


def _structures(n: int, seed: int, with_oxygen: bool = False) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        atoms = bulk("Si", "diamond", float(rng.uniform(5.2, 5.6)))
        if with_oxygen and k % 2:
            atoms[1].symbol = "O"
        atoms.rattle(0.08, seed=int(rng.integers(1 << 30)))
        out.append(atoms)
    return out


def _labelled(structures, sigma: float, epsilon: float) -> list:
    """Lennard-Jones labels: two 'levels of theory' differ in σ (Å) and ε (eV)."""
    out = []
    for atoms in structures:
        a = atoms.copy()
        a.calc = LennardJones(sigma=sigma, epsilon=epsilon, rc=4.0, smooth=True)
        e, f, s = a.get_potential_energy(), a.get_forces(), a.get_stress(voigt=False)
        a.calc = SinglePointCalculator(a, energy=e, forces=f, stress=s)
        out.append(a)
    return out


def _predict(model, atoms_list, head: int):
    batch = Batch.from_atoms(atoms_list, dtype=F64)
    return predict(model, batch, head=torch.full((len(atoms_list),), head))


def test_add_and_extract_head_keep_predictions():
    model = tiny_geodite()
    atoms = _structures(2, 0)
    grown = add_head(model, "new", source_head="r2scan")
    assert grown.heads == ["pbe", "r2scan", "new"]
    for h in (0, 1):
        ref, out = _predict(model, atoms, h), _predict(grown, atoms, h)
        np.testing.assert_allclose(out.energy.detach(), ref.energy.detach(), atol=1e-12)
    # the new head starts as a copy of its source head
    np.testing.assert_allclose(
        _predict(grown, atoms, 2).energy.detach(), _predict(model, atoms, 1).energy.detach(), atol=1e-12
    )
    single = extract_head(grown, "r2scan")
    assert single.heads == ["r2scan"]
    out, ref = _predict(single, atoms, 0), _predict(model, atoms, 1)
    np.testing.assert_allclose(out.energy.detach(), ref.energy.detach(), atol=1e-12)
    np.testing.assert_allclose(out.forces, ref.forces, atol=1e-12)
    with pytest.raises(ValueError, match="already has"):
        add_head(grown, "pbe")


def test_farthest_point_sampling_spreads_out():
    rng = np.random.default_rng(0)
    cluster = rng.normal(0.0, 0.01, size=(50, 2))
    outliers = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0]])
    x = np.concatenate([cluster, outliers])
    picked = farthest_point_sampling(x, 4, seed=1)
    assert len(set(picked)) == 4
    assert {50, 51, 52} <= set(picked)  # every outlier before a second cluster point
    assert farthest_point_sampling(x, 100) == list(range(len(x)))


def test_element_filter_and_replay_selection():
    pool = [Sample(a, 0.0) for a in _structures(8, 1, with_oxygen=True)]
    assert len(element_filter(pool, {"Si"}, "subset")) == 4
    assert len(element_filter(pool, {"O"}, "overlap")) == 4
    assert len(element_filter(pool, {"O"}, "subset")) == 0
    model = tiny_geodite()
    for method in ("random", "fps"):
        chosen = select_replay(model, pool, {"Si"}, 3, method)
        assert len(chosen) == 3 and all(set(s.atoms.get_chemical_symbols()) == {"Si"} for s in chosen)


def test_fine_tune_new_head_with_replay(tmp_path):
    old = _labelled(_structures(12, 2, with_oxygen=True), sigma=2.1, epsilon=1.0)
    new = _labelled(_structures(10, 3), sigma=2.3, epsilon=1.4)
    write(tmp_path / "old.extxyz", old)
    write(tmp_path / "new.extxyz", new)
    model_opts = dict(cutoff=4.0, n_channels=4, n_radial=4, hidden=8, n_blocks=1)
    base = TrainConfig(
        architecture="geodite",
        model=model_opts,
        datasets=[DatasetSpec(path=tmp_path / "old.extxyz", head="pbe")],
        epochs=2,
        batch_size=4,
        output=tmp_path / "base.pt",
    )
    train(base, show_progress=False)
    config = FineTuneConfig(
        checkpoint=tmp_path / "base.pt",
        new_head="new",
        datasets=[DatasetSpec(path=tmp_path / "new.extxyz", head="new", validation_fraction=0.2)],
        replay_data=[DatasetSpec(path=tmp_path / "old.extxyz")],
        replay_size=3,
        replay_weight=0.5,
        epochs=4,
        batch_size=4,
        lr=5e-3,
        fit_shift=True,  # LJ energies follow the coordination: a per-neighbour baseline fits them
        warmup_steps=0,
        output=tmp_path / "ft.pt",
        single_head_output=tmp_path / "ft-new.pt",
    )
    result = fine_tune(config, show_progress=False)
    assert len(result.replay) == 3
    assert all(s.head == "pbe" and s.weight == 0.5 for s in result.replay)
    assert all(set(s.atoms.get_chemical_symbols()) == {"Si"} for s in result.replay)  # subset filter
    model, content = load_model(tmp_path / "ft.pt")
    assert model.heads == ["pbe", "new"] and content["metadata"]["n_train"] == 8 + 3
    assert content["training"]["architecture"] == "geodite"
    # the new head learned its level of theory: far better than the copied old head on new data
    from mlipflows.training.data import read_extxyz

    new_samples = read_extxyz(tmp_path / "new.extxyz", head="new")
    as_old = [Sample(s.atoms, s.energy, s.forces, head="pbe") for s in new_samples]
    err_new = errors(model, new_samples)["all"]["energy_mae_mev_atom"]
    err_old = errors(model, as_old)["all"]["energy_mae_mev_atom"]
    assert err_new < 0.5 * err_old, (err_new, err_old)
    # the extracted single-head checkpoint is what load_potential serves
    clear_cache()
    pot = load_potential(str(tmp_path / "ft-new.pt"), dtype=torch.float32)
    batch = Batch.from_atoms(new[:2], dtype=torch.float32)
    ref = predict(model, batch, head=torch.tensor([1, 1]))
    np.testing.assert_allclose(pot.evaluate(batch).energy, ref.energy.detach(), rtol=1e-6)
    # … and so does CHECKPOINT@HEAD of the two-head file; its heads never share a name or checksum
    both = str(tmp_path / "ft.pt")
    picked = load_potential(f"{both}@new", dtype=torch.float32)
    np.testing.assert_allclose(picked.evaluate(batch).energy, ref.energy.detach(), rtol=1e-6)
    first = load_potential(both, dtype=torch.float32)  # the first head, with a warning
    assert (picked.card.name, first.card.name) == ("ft@new", "ft@pbe")
    assert picked.card.checksum != first.card.checksum
    with pytest.raises(ModelLoadError, match="no such head; this model has heads"):
        load_potential(f"{both}@nope")
    clear_cache()


def test_finetune_command_rejects_a_bad_config(tmp_path):
    from typer.testing import CliRunner

    from mlipflows.cli import app

    bad = tmp_path / "ft.yaml"
    bad.write_text("new_head: x\ndatasets: []\n")  # no checkpoint to start from
    result = CliRunner().invoke(app, ["finetune", str(bad), "--quiet"])
    assert result.exit_code == 2
    assert "checkpoint" in result.output
