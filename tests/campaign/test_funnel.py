"""Funnels: stages select survivors from the store, expand per chunk, resume, stop, record."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from jobflow import run_locally
from typer.testing import CliRunner

from mlipflows.campaign import SpecError, load_spec
from mlipflows.campaign.run import plan_campaign
from mlipflows.cli import app
from mlipflows.store import get_job_store

runner = CliRunner()
ROOT = Path(__file__).parents[2]

FUNNEL = """\
name: {name}
model: {model}
chunk_size: 8
relax: {{fmax: 0.05, max_steps: 200}}
candidates:
  prototypes:
    - prototype: fcc
      sites: {{A: [Cu, Ag, Au, Ni, Pd, Pt]}}
    - prototype: bcc
      sites: {{A: [Cu, Fe]}}
hull: {{mode: mlip}}
stages:
  - name: phonons
    kind: phonons
    select: {{where: "e_above_hull < 0.5", order_by: e_above_hull, max: 4}}
    settings: {{min_length: 7, mesh: [4, 4, 4], fmax: 0.001}}
    chunk_size: 2
  - name: elastic
    kind: elastic
    select: {{where: "hull.e_above_hull < 0.5"}}
    settings: {{fmax: {elastic_fmax}}}
  - name: eos
    kind: eos
    settings: {{n_points: 5}}
"""


def _spec(tmp_path: Path, name: str = "funnel", model: str = "morse", elastic_fmax: float = 0.005) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(FUNNEL.format(name=name, model=model, elastic_fmax=elastic_fmax))
    return path


def _docs(name: str) -> list[dict]:
    store = get_job_store()
    results = store.additional_stores["results"]
    results.connect()
    return list(results.query({"campaign": name}, properties={"_id": 0}))


def test_a_funnel_runs_every_stage_and_reports_them(tmp_path):
    first = runner.invoke(app, ["campaign", "run", str(_spec(tmp_path))])
    assert first.exit_code == 0, first.output
    # each stage has its own bar: no bar counts past its total
    assert "phonons chunks" in first.output and "elastic chunks" in first.output
    for done, total in re.findall(r"(\d+)/(\d+)", first.output):
        assert int(done) <= int(total), first.output
    docs = _docs("funnel")
    per_stage = Counter((d.get("stage"), d["task_type"]) for d in docs)
    assert per_stage[("phonons", "phonon")] == 4  # max 4 of the near-hull candidates
    manifests = {d["stage"]: d for d in docs if d["task_type"] == "manifest"}
    assert manifests["phonons"]["n_selected"] == 4 and manifests["phonons"]["query"]["max"] == 4
    assert manifests["phonons"]["selected_ids"] and manifests["phonons"]["settings_digest"]
    # only structures through the phonon gate reach elastic, and elastic's survivors reach eos
    phonon_ok = {
        d["structure_id"] for d in docs if d["task_type"] == "phonon" and not d["has_imaginary_modes"]
    }
    assert set(manifests["elastic"]["selected_ids"]) <= phonon_ok
    assert per_stage[("eos", "eos")] == manifests["eos"]["n_selected"] > 0
    # documents know their stage; jobs grow with chunks, not structures
    assert all(d["stage"] == "phonons" for d in docs if d["task_type"] == "phonon")

    status = runner.invoke(app, ["campaign", "status", "funnel"])
    assert status.exit_code == 0, status.output
    for stage in ("relax", "hull", "phonons", "elastic", "eos"):
        assert stage in status.output
    assert "phonons ← hull (where: e_above_hull < 0.5" in " ".join(status.output.split())
    listing = runner.invoke(app, ["campaign", "list"])
    assert "funnel" in listing.output and "phonons" in listing.output

    report = runner.invoke(app, ["report", "funnel", "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report" / "index.html").read_text()
    assert '<section id="funnel">' in page and (tmp_path / "report" / "funnel.svg").stat().st_size > 2000
    assert "phonons (phonons): 4 selected" in page
    finalists = page[page.index('id="finalists-table"') :]
    assert "elastic k_vrh (GPa)" in finalists and "eos b0 (GPa)" in finalists
    assert "hull e_above_hull (eV/atom)" in finalists and "weights analytic:D=0.3,a=1.6,rc=6.0)" in page
    # a stage's section: named by its task, the answer first, counts as integers
    phonons = page[page.index("Phonons, stage “phonons”") :]
    phonons = phonons[: phonons.index("</table>")]
    headers = re.findall(r"<th[^>]*>([^<]+)</th>", phonons)
    assert headers[2:4] == ["has_imaginary_modes", "min_frequency (THz)"], headers
    first_row = re.findall(r"<td[^>]*>([^<]*)</td>", phonons.split("<tbody>")[1].split("</tr>")[0])
    n_displacements = first_row[headers.index("setup.n_displacements")]
    assert n_displacements.isdigit(), n_displacements


def test_rerun_reuses_everything_and_a_changed_stage_reruns_only_itself_and_after(tmp_path):
    spec = _spec(tmp_path, "resume")
    assert runner.invoke(app, ["campaign", "run", str(spec)]).exit_code == 0
    before = {d["uuid"]: d for d in _docs("resume")}
    again = runner.invoke(app, ["campaign", "run", str(spec)])
    assert again.exit_code == 0 and "0 structures to relax" in again.output
    after = _docs("resume")
    assert {d["uuid"] for d in after} == set(before)  # nothing duplicated, nothing new
    assert all(
        d.get("n_to_run", 0) == 0 for d in after if d["task_type"] == "manifest" and d["uuid"] in before
    )
    # a rerun that reuses everything keeps the stage's first run and its time
    for m in (d for d in after if d["task_type"] == "manifest"):
        first = before[m["uuid"]]
        assert [r["n_to_run"] for r in m["runs"]] == [first["n_to_run"], 0]
        assert m["first_created_at"] == first["created_at"]
        assert m["work_s"] == first["work_s"] and (m["work_s"] is None) == (first["n_to_run"] == 0)
    status = runner.invoke(app, ["campaign", "status", "resume"])
    assert re.search(r"phonons\s.*done\s*│\s*\d+ s", status.output), status.output

    changed = _spec(tmp_path, "resume", elastic_fmax=0.004)
    assert runner.invoke(app, ["campaign", "run", str(changed)]).exit_code == 0
    new = [d for d in _docs("resume") if d["uuid"] not in before]
    assert new and {d["stage"] for d in new} == {"elastic", "eos"}  # phonons and earlier reused


def test_zero_survivors_are_a_normal_result(tmp_path):
    path = _spec(tmp_path, "empty")
    path.write_text(path.read_text().replace('"e_above_hull < 0.5"', '"e_above_hull < -5"'))
    result = runner.invoke(app, ["campaign", "run", str(path)])
    assert result.exit_code == 0, result.output
    manifests = [d for d in _docs("empty") if d["task_type"] == "manifest"]
    assert {m["stage"]: m["n_selected"] for m in manifests} == {"phonons": 0, "elastic": 0, "eos": 0}
    assert all(m["state"] == "done" for m in manifests)


def _status_rows(name: str) -> list[list[str]]:
    status = runner.invoke(app, ["campaign", "status", name])
    assert status.exit_code == 0, status.output
    return [[c.strip() for c in line.split("│")[1:-1]] for line in status.output.splitlines() if "│" in line]


def test_until_stops_after_the_named_stage_and_status_lists_the_stages_not_run(tmp_path):
    spec = _spec(tmp_path, "until")
    extra = tmp_path / "extra.yaml"  # the same funnel with one more stage at the end
    extra.write_text(spec.read_text() + "  - name: eos2\n    kind: eos\n    settings: {n_points: 7}\n")
    result = runner.invoke(app, ["campaign", "run", str(extra), "--until", "phonons"])
    assert result.exit_code == 0, result.output
    ran = [d for d in _docs("until") if d.get("state") != "planned"]
    assert {d.get("stage") for d in ran} == {"relax", "hull", "phonons"}
    # the stages after --until are listed in funnel order, with no counts, as not run yet
    rows = _status_rows("until")
    assert [r[0] for r in rows] == ["relax", "hull", "phonons", "elastic", "eos", "eos2"]
    assert rows[2][8] == "done" and rows[2][2] == "4"
    for row in rows[3:]:
        assert row[2:8] == [""] * 6 and row[8] == "not run yet", row
    as_json = runner.invoke(app, ["campaign", "status", "until", "--json"])
    stages = {s["stage"]: s for s in json.loads(as_json.output)}
    assert stages["phonons"]["ran"] and stages["phonons"]["selected"] == 4
    assert not stages["eos2"]["ran"] and stages["eos2"]["selected"] is None
    assert stages["eos2"]["source"] == "eos" and stages["eos2"]["state"] == "not run yet"
    report = runner.invoke(app, ["report", "until", "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    page = (tmp_path / "report" / "index.html").read_text()
    assert "elastic (elastic) ← phonons: not run yet" in page and "phonons (phonons): 4 selected" in page
    assert "phonons min_frequency (THz)" in page[page.index('id="finalists-table"') :]  # what ran

    # the rest runs under a spec without eos2: nothing planned is left, and eos2 is gone
    assert runner.invoke(app, ["campaign", "run", str(spec)]).exit_code == 0
    assert not [d for d in _docs("until") if d.get("state") == "planned"]
    rows = _status_rows("until")
    assert [r[0] for r in rows] == ["relax", "hull", "phonons", "elastic", "eos"]
    assert all(r[8] == "done" for r in rows), rows
    bad = runner.invoke(app, ["campaign", "run", str(spec), "--until", "nosuch"])
    assert bad.exit_code == 2 and "no such stage" in bad.output


def test_too_many_failures_stop_the_campaign_naming_the_stage_and_reasons(tmp_path):
    spec = _spec(tmp_path, "failing")
    # supercells of more than 2 atoms are refused: every phonon calculation fails
    spec.write_text(spec.read_text().replace("min_length: 7,", "min_length: 7, max_supercell_atoms: 2,"))
    result = runner.invoke(app, ["campaign", "run", str(spec)])
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "stage 'phonons' (phonons): 4 of 4 structures failed" in text and "max_failed_fraction" in text
    assert "needs" in text  # the commonest reason: the supercell size needed
    elastic = [d for d in _docs("failing") if d.get("stage") == "elastic"]
    assert [d["state"] for d in elastic] == ["planned"]  # declared, never started
    assert [r[8] for r in _status_rows("failing") if r[0] == "elastic"] == ["not run yet"]


def test_stage_errors_name_file_and_line(tmp_path):
    path = _spec(tmp_path, "typo")
    text = path.read_text()
    path.write_text(text.replace("min_length: 7", "min_lenght: 7").replace("kind: eos", "kind: eqs"))
    with pytest.raises(SpecError) as err:
        load_spec(path)
    message = str(err.value)
    lines = text.splitlines()
    settings_line = next(k for k, line in enumerate(lines, 1) if "min_length" in line)
    kind_line = next(k for k, line in enumerate(lines, 1) if "kind: eos" in line)
    assert f"typo.yaml:{settings_line}:" in message and "min_lenght" in message and "min_length" in message
    assert f"typo.yaml:{kind_line}:" in message and "unknown stage kind 'eqs'" in message


def test_polymorph_stage_rebuilds_the_hull(tmp_path):
    path = tmp_path / "poly.yaml"
    path.write_text(
        """\
name: poly
model: morse
relax: {fmax: 0.05, max_steps: 200}
candidates:
  prototypes:
    - prototype: rocksalt
      sites: {A: [Cu, Ag], B: [Au]}
hull: {mode: mlip}
stages:
  - name: polymorphs
    kind: polymorphs
    settings: {n_random: 2, max_steps: 300}
"""
    )
    result = runner.invoke(app, ["campaign", "run", str(path)])
    assert result.exit_code == 0, result.output
    docs = _docs("poly")
    rankings = [d for d in docs if d["task_type"] == "ranking"]
    assert {d["formula"] for d in rankings} == {"CuAu", "AgAu"}
    rebuilt = {
        d["structure_id"]: d for d in docs if d.get("stage") == "polymorphs" and d["task_type"] == "stability"
    }
    for sid, d in rebuilt.items():
        # a pair potential prefers 8 neighbours (CsCl) to rock salt's 6
        assert d["polymorph"] and "cscl" in d["polymorph"], (sid, d["polymorph"])
        assert d["e_above_hull"] < d["e_above_hull_before"]


def test_killed_run_resumes_with_nothing_lost_or_duplicated(tmp_path, monkeypatch):
    """kill -9 inside the phonon stage, then run again: the same results as an uninterrupted run."""
    spec = _spec(tmp_path, "killed", model="tests.mongo.gate:gated_morse")
    gate = tmp_path / "gate"
    gate.touch()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "MLIPFLOWS_TEST_GATE": str(gate),
        "MLIPFLOWS_TEST_GATE_MIN_ATOMS": "8",  # phonon supercells, not the relaxations
        "OMP_NUM_THREADS": "1",
    }
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlipflows"), "campaign", "run", str(spec)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    entered = Path(f"{gate}.entered")
    deadline = time.monotonic() + 120
    while not entered.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-2000:]
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    stored = _docs("killed")
    assert any(d["task_type"] == "manifest" and d["stage"] == "phonons" for d in stored)
    assert not any(d["task_type"] == "phonon" for d in stored)  # killed before any phonon result
    gate.unlink()

    resumed = runner.invoke(app, ["campaign", "run", str(spec)])
    assert resumed.exit_code == 0, resumed.output
    assert "0 structures to relax" in resumed.output  # the relaxations were not lost
    docs = _docs("killed")
    assert len(docs) == len({d["uuid"] for d in docs})
    once = Counter((d.get("stage"), d["task_type"], d["structure_id"]) for d in docs)
    assert max(once.values()) == 1

    # the same funnel without a kill, in another store: the same results
    monkeypatch.setenv("MLIPFLOWS_HOME", str(tmp_path / "clean-home"))
    store = get_job_store()
    plan = plan_campaign(load_spec(spec), store)
    run_locally(plan.flow, store=store, log=False, ensure_success=True)
    clean = {(d.get("stage"), d["task_type"], d["structure_id"]): d for d in _docs("killed")}
    for d in docs:
        if d["task_type"] in ("phonon", "elastic", "eos"):
            other = clean[(d["stage"], d["task_type"], d["structure_id"])]
            for key in ("min_frequency", "k_vrh", "b0"):
                if d.get(key) is not None:
                    assert d[key] == pytest.approx(other[key], rel=1e-6), key
    assert {k for k in clean if k[1] != "manifest"} == {k for k in once if k[1] != "manifest"}


def test_manifest_and_results_are_json(tmp_path):
    runner.invoke(app, ["campaign", "run", str(_spec(tmp_path, "json")), "--until", "phonons"])
    res = runner.invoke(app, ["results", "--campaign", "json", "--task", "manifest", "--format", "json"])
    rows = {r["stage"]: r for r in json.loads(res.output)}
    assert rows["phonons"]["n_selected"] == 4 and rows["phonons"]["state"] == "done"
    assert rows["elastic"]["state"] == "planned" and rows["elastic"]["settings_digest"]
