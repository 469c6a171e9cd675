"""`mlipflows phonons` and `mlipflows kappa` end to end with Morse (results stored, plots written)."""

from __future__ import annotations

import json

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
    args = ["phonons", str(cu), "--model", "morse", "--min-length", "6", "--plot", str(png)]
    result = runner.invoke(app, [*args, "--tag", "mine", "--json", str(tmp_path / "out" / "ph.json")])
    assert result.exit_code == 0, result.output
    assert "successful" in result.output and png.stat().st_size > 10_000
    stored = _results("phonon")["cu"]
    assert stored["state"] == "successful" and stored["has_imaginary_modes"] is False
    assert stored["band_labels"][0] == "Γ" and stored["tags"] == ["mine"]
    written = json.loads((tmp_path / "out" / "ph.json").read_text())
    assert [d["structure_id"] for d in written] == ["cu"] and written[0]["force_constants"]  # full
    tagged = runner.invoke(app, ["results", "--tag", "mine", "--format", "json"])
    assert [d["task_type"] for d in json.loads(tagged.output)] == ["phonon"]
    both = runner.invoke(
        app, ["phonons", str(cu), "--model", "morse", "--min-length", "6", "--supercell", "2 2 2"]
    )
    message = " ".join(both.output.replace("│", " ").split())
    assert both.exit_code == 2 and "--supercell or --min-length, not both" in message


def test_kappa_command_stores_and_plots(tmp_path):
    cu = tmp_path / "cu.vasp"
    write(cu, bulk("Cu", "fcc", 3.6), format="vasp")
    png = tmp_path / "kappa.png"
    args = ["kappa", str(cu), "--model", "morse", "--mesh", "4 4 4", "--fc3-supercell", "2 2 2"]
    extra = ["--temperatures", "300", "--temperatures", "500", "--plot", str(png), "--tag", "k"]
    result = runner.invoke(app, [*args, *extra, "--json", str(tmp_path / "k.json")])
    assert result.exit_code == 0, result.output
    assert "κ_TOT" in result.output and png.stat().st_size > 5_000
    stored = _results("kappa")["cu"]
    assert stored["temperatures"] == [300.0, 500.0] and stored["tags"] == ["k"]
    assert len(stored["kappa_tot_avg"]) == 2 and "mode_kappa" not in stored
    written = json.loads((tmp_path / "k.json").read_text())
    assert written[0]["kappa_tot_avg"] == stored["kappa_tot_avg"] and "mode_kappa" in written[0]
    both = runner.invoke(app, [*args, "--fc3-min-length", "9"])
    assert both.exit_code == 2 and "not both" in " ".join(both.output.replace("│", " ").split())


def test_kappa_command_rejects_a_bad_mesh(tmp_path):
    result = runner.invoke(app, ["kappa", str(tmp_path / "x.cif"), "--model", "morse", "--mesh", "4 4"])
    assert result.exit_code != 0
    assert "--mesh" in result.output


def test_a_kappa_plot_at_one_temperature_is_bars_not_one_point_lines(tmp_path):
    from mlipflows.phonons.plots import plot_kappa

    def doc(sid, temps, k_p, k_c):
        return {
            "structure_id": sid,
            "formula_pretty": "Si",
            "temperatures": temps,
            "kappa_p_rta": [[k] * 3 + [0.0] * 3 for k in k_p],
            "kappa_c": [[k] * 3 + [0.0] * 3 for k in k_c],
            "kappa_tot_avg": [p + c for p, c in zip(k_p, k_c, strict=True)],
        }

    one = [doc("a", [300.0], [120.0], [1.0]), doc("b", [300.0], [40.0], [2.0]), {"structure_id": "x"}]
    assert plot_kappa(one, tmp_path / "bars.png") == "bars"
    assert (tmp_path / "bars.png").stat().st_size > 5_000
    several = [doc("a", [300.0, 600.0], [120.0, 60.0], [1.0, 1.5])]
    assert plot_kappa(several, tmp_path / "lines.png") == "lines"
