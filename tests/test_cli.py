from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from mlipflows.cli import app
from tests.conftest import EXAMPLES

runner = CliRunner()


def test_relax_stores_results_and_names_bad_files(tmp_path):
    bad = tmp_path / "broken.cif"
    bad.write_text("data_broken\n_cell_length_a 3\nthis is not a cif\n")
    files = [
        str(EXAMPLES / "MgO_rocksalt.cif"),
        str(EXAMPLES / "Cu_fcc.cif"),
        str(bad),
        str(tmp_path / "missing.vasp"),
    ]
    out_json = tmp_path / "out.json"
    result = runner.invoke(
        app, ["relax", *files, "--model", "morse", "--tag", "cli", "--json", str(out_json)]
    )
    assert result.exit_code == 1, result.output  # unreadable inputs → non-zero, after storing the rest
    assert "broken.cif" in result.output and "missing.vasp" in result.output
    assert "MgO_rocksalt" in result.output and "Cu_fcc" in result.output
    payload = json.loads(out_json.read_text())
    assert {d["structure_id"] for d in payload["results"]} == {"MgO_rocksalt", "Cu_fcc"}
    assert len(payload["results"][0]["forces"]) == payload["results"][0]["nsites"]
    assert set(payload["unreadable_files"]) == {str(bad), str(tmp_path / "missing.vasp")}

    csv = runner.invoke(app, ["results", "--tag", "cli", "--format", "csv"])
    assert csv.exit_code == 0
    assert csv.output.count("\n") >= 3 and "energy_per_atom" in csv.output
    table = runner.invoke(app, ["results", "--tag", "cli"])
    assert "MgO" in table.output
    assert (
        "--tag nothing: no result in this store has it"
        in runner.invoke(app, ["results", "--tag", "nothing"]).output
    )


def test_poscar_and_extxyz_inputs(tmp_path):
    from ase.build import bulk
    from ase.io import write

    write(tmp_path / "POSCAR", bulk("Al", "fcc", 4.1), format="vasp")
    write(tmp_path / "two.extxyz", [bulk("Cu", "fcc", 3.7), bulk("Ni", "fcc", 3.6)], format="extxyz")
    result = runner.invoke(
        app, ["relax", str(tmp_path / "POSCAR"), str(tmp_path / "two.extxyz"), "--model", "morse"]
    )
    assert result.exit_code == 0, result.output
    frame = runner.invoke(app, ["results", "--format", "json"])
    ids = {row["structure_id"] for row in json.loads(frame.output)}
    assert ids == {f"{tmp_path.name}/POSCAR", "two-0", "two-1"}  # VASP's fixed name: its folder too
    assert f'"{tmp_path.name}/POSCAR"' in frame.output  # not pandas' "\/"


def test_bad_options_are_rejected():
    result = runner.invoke(app, ["relax", str(EXAMPLES / "Cu_fcc.cif"), "--cell-filter", "wobbly"])
    assert result.exit_code != 0


@pytest.mark.slow
def test_models_table_lists_offline_models():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for name in ("sevennet-0", "sevennet-l3i5", "chgnet-0.3.0"):
        assert name in result.output
    assert "no:" not in result.output
    assert "NAME+d3" in " ".join(result.output.split())


@pytest.mark.slow
def test_demo_relaxes_the_examples_with_sevennet():
    result = runner.invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    for name in ("MgO_rocksalt", "GaAs_zincblende", "Cu_fcc", "SrTiO3_perovskite"):
        assert name in result.output
    assert "failed" not in result.output


def test_a_job_that_fails_says_why_in_one_line_not_a_traceback(tmp_path, monkeypatch):
    from mlipflows.makers.relax import RelaxMaker

    def broken(self, *args, **kwargs):
        raise RuntimeError("the engine ran out of something")

    monkeypatch.setattr(RelaxMaker, "compute", broken)
    cu = tmp_path / "cu.cif"
    shutil.copy(EXAMPLES / "Cu_fcc.cif", cu)
    res = CliRunner().invoke(app, ["relax", str(cu), "--model", "morse"])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert "job 'mlipflows relax 1' failed: RuntimeError: the engine ran out of something" in text
    assert "Traceback" not in text and "did not finish running" not in text


def test_relax_exits_1_when_a_structure_failed_and_only_stuck_ones_are_told_more_steps(tmp_path):
    nacl = tmp_path / "NaCl.cif"
    shutil.copy(EXAMPLES / "NaCl_rocksalt.cif", nacl)
    out = tmp_path / "new" / "r.json"  # its folder is made
    args = ["relax", str(nacl), "--json", str(out)]
    res = CliRunner().invoke(app, [*args, "--model", "tests.helpers:morse_no_xe"])
    assert res.exit_code == 0, res.output  # a model that covers Na and Cl
    res = CliRunner().invoke(app, [*args, "--model", "mpnice-si-mlearn"])
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "1 of 1 failed or unphysical" in text
    assert "did not converge" not in text  # it stopped for its elements, not for --steps
    assert json.loads(out.read_text())["results"][0]["state"] == "failed"


def test_counts_print_as_integers_even_when_all_zero_and_energies_stay_floats():
    import pandas as pd

    from mlipflows.commands.ui import _integral

    assert _integral(pd.Series([0.0, 0.0, None], name="steps"))  # failed runs: 0 steps, a gap
    assert _integral(pd.Series([12.0, None], name="n_displacements"))
    assert not _integral(pd.Series([0.0, 0.0], name="E_hull (eV/atom)"))  # all on the hull: 0.0000
    assert not _integral(pd.Series([0.5, 2.0], name="steps"))
