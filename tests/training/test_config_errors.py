"""Training and fine-tuning YAML mistakes: one line each, with the file's line and a fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.training.config import ConfigError, TrainConfig

GOOD = """\
architecture: mpnice
model: {n_channels: 8, n_blocks: 1}
datasets:
  - {path: data.extxyz, head: pbe}
epochs: 2
output: tiny.pt
"""


def _config(tmp_path, text: str):
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("epochs: 2", "epoch: 2", "train.yaml:5: epoch: not a setting here; did you mean epochs"),
        ("head: pbe}", "haed: pbe}", "train.yaml:4: datasets.0.haed: not a setting here; did you mean head"),
        ("architecture: mpnice", "architecture: mpnic", "unknown architecture 'mpnic': did you mean mpnice?"),
        ("n_channels: 8", "n_channel: 8", "'n_channel' is not an option of mpnice: did you mean n_channels"),
        ("epochs: 2", "epochs: [2", "not valid YAML"),
    ],
)
def test_a_mistake_is_one_line_with_its_place(tmp_path, old, new, expected):
    path = _config(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_yaml(path)
    assert expected in " ".join(str(err.value).split())
    res = CliRunner().invoke(app, ["train", str(path), "--quiet"])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert expected in " ".join(res.output.split())


def test_nequip_lr_is_spelt_either_way_and_overrides_are_validated(tmp_path):
    nequip = GOOD.replace("mpnice", "nequip-lr").replace("{n_channels: 8, n_blocks: 1}", "{n_scalars: 8}")
    cfg = TrainConfig.from_yaml(_config(tmp_path, nequip))
    assert cfg.architecture == "nequip_lr"
    with pytest.raises(ConfigError, match="epochs"):
        cfg.with_updates(epochs=0)  # an untrained model would be written over the output
    res = CliRunner().invoke(app, ["train", str(_config(tmp_path, GOOD)), "--epochs", "0", "--quiet"])
    assert res.exit_code == 2 and "epochs" in res.output


def test_finetune_names_a_missing_checkpoint_and_takes_a_packaged_models_name(tmp_path):
    from mlipflows.models.checkpoint import PACKAGED
    from mlipflows.training.replay import FineTuneConfig

    text = "checkpoint: {ck}\nnew_head: x\ndatasets: [{{path: new.extxyz, head: x}}]\n"
    missing = tmp_path / "ft.yaml"
    missing.write_text(text.format(ck="tinyy.pt"))
    res = CliRunner().invoke(app, ["finetune", str(missing), "--quiet"])
    assert res.exit_code == 2 and "tinyy.pt: no such checkpoint file" in " ".join(res.output.split())
    missing.write_text(text.format(ck="mpnice-si-mlearn"))
    assert FineTuneConfig.from_yaml(missing).checkpoint == PACKAGED / "mpnice-si-mlearn.pt"


def test_the_packaged_models_are_not_overwritten_without_force(tmp_path, monkeypatch):
    from pathlib import Path

    root = Path(__file__).parents[2]
    monkeypatch.chdir(root)  # the YAML's output path is relative to the repository root
    shipped = root / "analysis" / "models" / "mpnice-si-mlearn.yaml"
    res = CliRunner().invoke(app, ["train", str(shipped), "--quiet", "--epochs", "1"])
    assert res.exit_code == 2 and "is the packaged model 'mpnice-si-mlearn'" in " ".join(res.output.split())
