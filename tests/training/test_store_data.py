"""Training data from our own results store: stored static and relax results come back as
samples with the model's energies, forces and stresses, and a training YAML can name them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from jobflow import run_locally
from pydantic import ValidationError

from mlipflows.engine import Batch, RelaxSettings
from mlipflows.errors import DataNotFoundError
from mlipflows.makers import RelaxMaker, StaticMaker, relax_flow
from mlipflows.makers.base import ChunkSettings
from mlipflows.potentials import load_potential
from mlipflows.store import get_job_store
from mlipflows.training import DatasetSpec, TrainConfig, train
from mlipflows.training.store_data import StoreQuery, read_store
from tests.training.test_training import TINY


def _store_labels(structures):
    ids = [f"s{k}" for k in range(len(structures))]
    chunk = ChunkSettings(model="morse", campaign="distil")
    static = relax_flow(structures, ids, chunk_size=3, maker=StaticMaker(chunk=chunk))
    relaxed = relax_flow(
        structures[:2], ids[:2], maker=RelaxMaker(chunk=chunk, relax=RelaxSettings(max_steps=5))
    )
    store = get_job_store()
    run_locally([static, relaxed], store=store, log=False, ensure_success=True)
    return store, ids


def test_stored_results_come_back_with_forces_and_stress(structures):
    store, ids = _store_labels(structures)
    samples = read_store(StoreQuery(campaign="distil", task_type="static"), head="teacher", store=store)
    assert len(samples) == len(ids)
    morse = load_potential("morse")
    by_formula = {s.atoms.get_chemical_formula(): s for s in samples}
    for structure in structures:
        sample = by_formula[structure.to_ase_atoms().get_chemical_formula()]
        ref = morse.evaluate(Batch.from_structures([structure], dtype=morse.dtype))
        assert sample.energy == pytest.approx(float(ref.energy[0]), abs=1e-6)
        np.testing.assert_allclose(sample.forces, ref.forces.numpy(), atol=1e-6)
        np.testing.assert_allclose(sample.stress, ref.stress[0].numpy(), atol=1e-8)  # eV/Å³, ASE sign
        assert sample.head == "teacher"
    assert max(np.abs(s.forces).max() for s in samples) > 0.01  # rattled: real force labels
    both = read_store(StoreQuery(campaign="distil"), store=store)
    assert len(both) == len(ids) + 2  # the relax results are labelled at their final geometry
    with pytest.raises(DataNotFoundError, match=r"no stored static or relax results.*distill --label"):
        read_store(StoreQuery(campaign="distil", model="sevennet-0"), store=store)


def test_a_training_yaml_can_train_on_stored_results(structures, tmp_path):
    _store_labels(structures)
    text = f"""
    model: {dict(TINY, cutoff=4.0)}
    datasets:
      - store: {{campaign: distil, model: morse, task_type: static}}
        head: morse
        validation_fraction: 0.25
    epochs: 2
    batch_size: 4
    output: {tmp_path / "student.pt"}
    """
    path = tmp_path / "train.yaml"
    path.write_text(text)
    config = TrainConfig.from_yaml(path)
    result = train(config, show_progress=False)
    assert result.checkpoint.is_file() and len(result.history) == 2
    student = load_potential(str(result.checkpoint))
    assert {"Si", "Na", "Cl", "Zn", "O"} <= student.elements
    with pytest.raises(ValidationError, match="exactly one of 'path'"):
        DatasetSpec.model_validate(yaml.safe_load("{head: x}"))
