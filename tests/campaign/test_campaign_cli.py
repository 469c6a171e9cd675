"""`mlipflows campaign run` → `hull` → `results --where`, end to end on the embedded store."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mlipflows.cli import app

runner = CliRunner()
WORKFLOWS = Path(__file__).parents[2] / "workflows"


def _spec(tmp_path, name="demo-test", model="morse", extra=""):
    text = (WORKFLOWS / "demo-oxides.yaml").read_text()
    text = text.replace("name: demo-oxides", f"name: {name}").replace("model: sevennet-0", f"model: {model}")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text + extra)
    return path


def test_campaign_run_hull_results_and_resume(tmp_path):
    spec = _spec(tmp_path)
    first = runner.invoke(app, ["campaign", "run", str(spec)])
    assert first.exit_code == 0, first.output
    assert "9 candidates" in first.output and "already stored" in first.output
    assert "9 stability results" in first.output

    again = runner.invoke(app, ["campaign", "run", str(spec)])
    assert again.exit_code == 0
    assert "0 structures to relax" in again.output

    hull = runner.invoke(
        app, ["hull", "demo-test", "--chemsys", "Sr-Ti-O", "--plot", str(tmp_path / "h.png")]
    )
    assert hull.exit_code == 0, hull.output
    assert (tmp_path / "h.png").stat().st_size > 10_000
    # the phases of the Sr-Ti-O hull: its subsystems' too, no other system's
    assert all(name in hull.output for name in ("SrTiO3-perovskite", "SrO-rocksalt", "TiO2-rutile"))
    assert "CaO-rocksalt" not in hull.output and "of O-Sr-Ti and its subsystems" in hull.output
    # Ca-Sr-O has phases (CaO, SrO) but no candidate of its own, so no diagram: one line, exit 2
    no_own = runner.invoke(
        app, ["hull", "demo-test", "--chemsys", "Ca-Sr-O", "--plot", str(tmp_path / "x.png")]
    )
    assert no_own.exit_code == 2 and "no phase diagram of its own" in " ".join(no_own.output.split())
    assert "Traceback" not in no_own.output and not (tmp_path / "x.png").exists()

    res = runner.invoke(
        app,
        [
            "results",
            "--campaign",
            "demo-test",
            "--where",
            "e_above_hull < 0.05",
            "--sort",
            "e_above_hull",
            "--format",
            "json",
        ],
    )
    rows = json.loads(res.output)
    assert rows and all(r["e_above_hull"] < 0.05 for r in rows)
    assert all(r["task_type"] == "stability" and r["decomposition"] for r in rows)
    assert [r["e_above_hull"] for r in rows] == sorted(r["e_above_hull"] for r in rows)
    bad = runner.invoke(app, ["results", "--where", "e_above_hull <"])
    assert bad.exit_code != 0


def test_failed_relaxations_are_excluded_and_recorded(tmp_path):
    text = (WORKFLOWS / "demo-oxides.yaml").read_text()
    text = text.replace("name: demo-oxides", "name: fail-test").replace(
        "model: sevennet-0", "model: tests.helpers:morse_no_xe"
    )
    text = text.replace(
        "    - prototype: anatase\n",
        "    - prototype: fcc\n      sites: {A: [Xe]}\n    - prototype: anatase\n",
    )
    spec = tmp_path / "fail.yaml"
    spec.write_text(text)
    result = runner.invoke(app, ["campaign", "run", str(spec)])
    assert result.exit_code == 0, result.output
    assert "Xe not supported" in result.output
    res = runner.invoke(
        app, ["results", "--campaign", "fail-test", "--task", "stability", "--format", "json"]
    )
    rows = {r["structure_id"]: r for r in json.loads(res.output)}
    assert rows["Xe-fcc"]["state"] == "failed"
    assert rows["Xe-fcc"]["error"].startswith("relaxation failed: element Xe not supported")
    assert rows["MgO-rocksalt"]["state"] == "successful"
    # Xe has a failed relaxation and a failed stability document: one structure, not two
    from mlipflows.campaign.status import list_campaigns
    from mlipflows.store import get_job_store

    (listed,) = [c for c in list_campaigns(get_job_store()) if c["campaign"] == "fail-test"]
    assert listed["not successful"] == 1 and listed["candidates"] == 10 < listed["results"]


def test_dft_mode_with_reference_file(tmp_path):
    from pymatgen.entries.computed_entries import ComputedEntry

    refs = [ComputedEntry("MgO", -12.0, entry_id="mgo-ref").as_dict()]
    (tmp_path / "refs.json").write_text(json.dumps(refs))
    text = (WORKFLOWS / "demo-oxides.yaml").read_text().replace("name: demo-oxides", "name: dft-test")
    text = text.replace("model: sevennet-0", "model: morse").replace(
        "  mode: mlip   # elemental references relaxed with the same model",
        "  mode: dft\n  reference_entries: refs.json",
    )
    spec = tmp_path / "dft.yaml"
    spec.write_text(text)
    result = runner.invoke(app, ["campaign", "run", str(spec)])
    assert result.exit_code == 0, result.output
    res = runner.invoke(app, ["results", "--campaign", "dft-test", "--task", "stability", "--format", "json"])
    rows = {r["structure_id"]: r for r in json.loads(res.output)}
    assert rows["MgO-rocksalt"]["hull_mode"] == "dft"
    assert rows["MgO-rocksalt"]["corrected_energy_per_atom"] is not None


def test_spec_errors_exit_before_compute(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: x\ncandidates:\n  prototypes:\n    - prototype: perovskite\n      sites: {A: [Sr]}\n"
    )
    result = runner.invoke(app, ["campaign", "run", str(spec)])
    assert result.exit_code == 2
    assert "bad.yaml:5" in result.output and "has sites" in result.output
    missing = tmp_path / "nodft.yaml"
    missing.write_text(
        "name: y\nmodel: morse\ncandidates:\n  prototypes:\n"
        "    - {prototype: fcc, sites: {A: [Cu]}}\nhull: {mode: dft}\n"
    )
    result = runner.invoke(app, ["campaign", "run", str(missing)], env={"MP_API_KEY": ""})
    assert result.exit_code == 2 and "MP_API_KEY" in result.output


def test_a_dry_run_prints_the_plan_and_stores_nothing(tmp_path):
    spec = _spec(tmp_path, name="dry-test", extra="stages:\n  - {name: ph, kind: phonons}\n")
    (tmp_path / "broken.cif").write_text("data_x\n_cell_length_a 3.0\nnot a loop\n")
    spec.write_text(
        spec.read_text().replace("candidates:\n", "candidates:\n  structures: [{file: broken.cif}]\n")
    )
    dry = runner.invoke(app, ["campaign", "run", str(spec), "--dry-run", "--until", "hull"])
    assert dry.exit_code == 0, dry.output
    words = " ".join(dry.output.split())
    assert (
        "10 candidates (1 unreadable)" in words
        and "3. ph (phonons) ← hull" in words
        and "(after --until: not run)" in words
    )
    assert "nothing computed or stored" in words
    assert runner.invoke(app, ["results", "--campaign", "dry-test"]).exit_code == 2  # no such campaign yet


def test_a_checkpoint_in_a_model_spec_is_found_next_to_the_spec_file(tmp_path, monkeypatch):
    import shutil

    from mlipflows.campaign import load_spec
    from mlipflows.models.checkpoint import PACKAGED
    from mlipflows.potentials import load_potential

    shutil.copy(PACKAGED / "mpnice-si-mlearn.pt", tmp_path / "si.pt")
    (tmp_path / "specs").mkdir()
    spec = _spec(tmp_path / "specs", model="../si.pt+zbl")
    monkeypatch.chdir("/")  # run from anywhere
    loaded = load_spec(spec)
    assert loaded.model == f"{(tmp_path / 'si.pt').resolve()}+zbl"
    assert load_potential(loaded.model).name == "mpnice-si-mlearn+zbl"  # its metadata name
