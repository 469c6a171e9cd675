"""`mlipflows bench formation-energy` end to end on a tiny WBM sample (analytic model)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mlipflows.cli import app

runner = CliRunner()
WBM = Path(__file__).parents[1] / "data" / "wbm" / "wbm-subset-40.json.gz"


def _bench(out: Path, *extra: str):
    args = ["bench", "formation-energy", "--model", "morse", "--data", str(WBM), "--out", str(out)]
    return runner.invoke(app, [*args, *extra])


def test_relaxes_scores_and_resumes(tmp_path):
    first = _bench(tmp_path, "--limit", "3", "--seed", "1")
    assert first.exit_code == 0, first.output
    assert "3 to relax" in first.output
    metrics = json.loads((tmp_path / "morse-n3-metrics.json").read_text())
    assert metrics["vs_dft_mp2023_refs"]["n"] + metrics["n_without_mlip_value"] == 3
    assert metrics["n_unphysical_excluded"] + metrics["n_failed"] <= metrics["n_without_mlip_value"]
    assert (tmp_path / "morse-n3-parity.png").stat().st_size > 5_000

    again = _bench(tmp_path, "--limit", "3", "--seed", "1")
    assert "0 to relax" in again.output  # stored relaxations are reused

    # a larger sample, scored on what is stored so far without relaxing anything
    interim = _bench(tmp_path, "--limit", "40", "--only-stored")
    assert interim.exit_code == 0, interim.output
    assert "scoring the 3 already relaxed" in interim.output
    assert json.loads((tmp_path / "morse-n3-metrics.json").read_text())["only_stored"]


def test_missing_data_is_a_clear_error(tmp_path):
    result = _bench(tmp_path, "--data", str(tmp_path / "nowhere"))
    assert result.exit_code == 2
    assert "not found" in result.output and "--data" in result.output
