"""Checkpoints: weights-only round trip through ``load_potential`` with identical results."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk

from mlipflows.engine import Batch
from mlipflows.errors import ModelLoadError
from mlipflows.models.checkpoint import checkpoint_dict, save_checkpoint
from mlipflows.potentials import clear_cache, load_potential
from tests.models.conftest import tiny_mpnice


def test_checkpoint_round_trip_through_load_potential(tmp_path):
    model = tiny_mpnice()
    path = save_checkpoint(model, tmp_path / "m.pt", metadata={"name": "tiny", "version": "0"})
    content = torch.load(path, weights_only=True)
    assert content["format"] == "mlipflows" and content["architecture"] == "mpnice"
    clear_cache()
    pot = load_potential(str(path), dtype=torch.float64)
    # two heads (pbe, r2scan): the first serves, and the name and checksum say which
    assert pot.name == "tiny@pbe" and pot.card.checksum.startswith("sha256:") and pot.cutoff == 4.0
    assert pot.card.checksum.endswith("@pbe")
    atoms = bulk("NaCl", "rocksalt", 5.2, cubic=True)
    atoms.rattle(0.1, seed=0)
    batch = Batch.from_atoms([atoms], dtype=torch.float64)
    out = pot.evaluate(batch)
    from mlipflows.models.potential import predict

    ref = predict(model, batch)
    assert float(out.energy[0]) == pytest.approx(float(ref.energy[0].detach()), abs=1e-12)
    np.testing.assert_allclose(out.forces.numpy(), ref.forces.numpy(), atol=1e-12)
    clear_cache()


def test_checkpoint_rejects_non_primitive_config():
    model = tiny_mpnice()
    with pytest.raises(TypeError, match="JSON-like"):
        checkpoint_dict(model, metadata={"bad": object()})


def test_unknown_architecture_is_a_load_error(tmp_path):
    content = checkpoint_dict(tiny_mpnice())
    content["architecture"] = "nope"
    torch.save(content, tmp_path / "x.pt")
    clear_cache()
    with pytest.raises(ModelLoadError, match="nope"):
        load_potential(str(tmp_path / "x.pt"))
