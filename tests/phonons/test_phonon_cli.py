"""`mlipflows phonons` and `mlipflows kappa` end to end with Morse (results stored, plots written)."""

from __future__ import annotations

from ase.build import bulk
from ase.io import write
from typer.testing import CliRunner

from mlipflows.cli import app
from mlipflows.store import get_job_store

runner = CliRunner()


def _results(task_type: str) -> dict[str, dict]:
    results = get_job_store().additional_stores["results"]
    results.connect()
    return {d["structure_id"]: d for d in results.query({"task_type": task_type})}


def test_phonons_command_stores_and_plots(tmp_path):
    cu = tmp_path / "cu.vasp"
    write(cu, bulk("Cu", "fcc", 3.6), format="vasp")
    png = tmp_path / "bands.png"
    result = runner.invoke(
        app, ["phonons", str(cu), "--model", "morse", "--min-length", "6", "--plot", str(png)]
    )
    assert result.exit_code == 0, result.output
    assert "successful" in result.output and png.stat().st_size > 10_000
    stored = _results("phonon")["cu"]
    assert stored["state"] == "successful" and stored["has_imaginary_modes"] is False
    assert stored["band_labels"][0] == "Γ"


def test_kappa_command_stores_and_plots(tmp_path):
    cu = tmp_path / "cu.vasp"
    write(cu, bulk("Cu", "fcc", 3.6), format="vasp")
    png = tmp_path / "kappa.png"
    args = ["kappa", str(cu), "--model", "morse", "--mesh", "4 4 4", "--fc3-supercell", "2 2 2"]
    result = runner.invoke(app, [*args, "--temperatures", "300", "--temperatures", "500", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert "κ_TOT" in result.output and png.stat().st_size > 5_000
    stored = _results("kappa")["cu"]
    assert stored["temperatures"] == [300.0, 500.0]
    assert len(stored["kappa_tot_avg"]) == 2 and "mode_kappa" not in stored


def test_kappa_command_rejects_a_bad_mesh(tmp_path):
    result = runner.invoke(app, ["kappa", str(tmp_path / "x.cif"), "--model", "morse", "--mesh", "4 4"])
    assert result.exit_code != 0
    assert "--mesh" in result.output
