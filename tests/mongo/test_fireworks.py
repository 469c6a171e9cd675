"""Campaigns on FireWorks over SecantusDB: concurrent workers, a killed worker, a dead server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections import Counter

import pytest
from fireworks import LaunchPad
from typer.testing import CliRunner

from mlipflows.campaign import load_spec
from mlipflows.campaign.submit import CampaignBusyError, load_launchpad, submit_campaign
from mlipflows.cli import app
from mlipflows.store import get_job_store
from tests.mongo.campaigns import (
    BIN,
    FUNNEL_SPEC,
    CampaignFiles,
    assert_no_password,
    check_stored_once,
    finish,
)
from tests.mongo.server import PASSWORD, SecantusServer

N_CANDIDATES = 3


def _submit(files: CampaignFiles) -> tuple[LaunchPad, int, int]:
    """Submit the campaign to a fresh LaunchPad; (LaunchPad, structures to relax, fireworks)."""
    lp = load_launchpad(files.launchpad)
    lp.reset("", require_password=False)
    sub = submit_campaign(load_spec(files.spec), get_job_store(), lp)
    assert len(sub.plan.candidates) == N_CANDIDATES
    return lp, sub.plan.n_to_relax, len(sub.fw_ids)


def _all_completed_once(lp: LaunchPad, n_fireworks: int, logs: list[str] = ()) -> None:
    states = Counter(fw["state"] for fw in lp.fireworks.find({}, {"state": 1}))
    assert states == {"COMPLETED": n_fireworks}, states
    launches = Counter(la["fw_id"] for la in lp.launches.find({"state": "COMPLETED"}, {"fw_id": 1}))
    every = [
        (la["fw_id"], la["launch_id"], la["state"], la.get("fworker", {}).get("name"))
        for la in lp.launches.find({}, {"fw_id": 1, "launch_id": 1, "state": 1, "fworker": 1})
    ]
    fws = [
        (fw["fw_id"], fw["state"], fw.get("launches"))
        for fw in lp.fireworks.find({}, {"state": 1, "launches": 1, "fw_id": 1})
    ]
    assert len(launches) == n_fireworks and set(launches.values()) == {1}, (every, fws, *logs)


def test_two_concurrent_workers_complete_every_firework_once(tmp_path, mongo_server, monkeypatch):
    files = CampaignFiles.create(tmp_path, mongo_server)
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(files.config))
    lp, n_relax, n_fireworks = _submit(files)
    workers = [files.worker("w1"), files.worker("w2")]
    logs = [finish(w) for w in workers]
    _all_completed_once(lp, n_fireworks, logs)
    db = files.results_db()
    check_stored_once(db, files.name, n_relax, N_CANDIDATES)

    # each worker process loaded the model once, however many fireworks it ran
    ran = Counter(la["launch_dir"].split("/")[-2] for la in lp.launches.find({}, {"launch_dir": 1}))
    assert sum(ran.values()) == n_fireworks and max(ran.values()) > 1, ran
    loads = Counter(files.loads.read_text().split())
    worker_pids = {str(w.pid) for w in workers}
    assert {pid: loads[pid] for pid in worker_pids if pid in loads} == dict.fromkeys(
        worker_pids & set(loads), 1
    )
    assert len(worker_pids & set(loads)) == len(ran)  # every worker that ran something loaded once
    assert all("Rocket finished" in log for log in logs)

    # the CLI: a second submission finds everything stored and only rebuilds the hull
    again = CliRunner().invoke(
        app, ["campaign", "submit", str(files.spec), "--launchpad", str(files.launchpad)]
    )
    assert again.exit_code == 0, again.output
    text = " ".join(again.output.split())
    assert "0 structures to relax" in text and "1 fireworks" in text
    assert PASSWORD not in text and "screener:****@" in text
    assert_no_password(db, lp.db)


def test_killed_worker_is_rerun_and_nothing_is_lost_or_duplicated(tmp_path, mongo_server, monkeypatch):
    files = CampaignFiles.create(tmp_path, mongo_server)
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(files.config))
    lp, n_relax, n_fireworks = _submit(files)
    with pytest.raises(CampaignBusyError, match="unfinished workflow"):  # not twice at once
        submit_campaign(load_spec(files.spec), get_job_store(), lp)

    files.gate.touch()  # the first evaluation in any worker waits here
    doomed = files.worker("doomed")
    assert files.wait_for_gate(doomed) == doomed.pid
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=30)
    running = [fw["fw_id"] for fw in lp.fireworks.find({"state": "RUNNING"}, {"fw_id": 1})]
    assert len(running) == 1

    # what `lpad detect_lostruns --time 0 --rerun` does: the dead run is READY again
    lost_launches, lost_fws, _ = lp.detect_lostruns(expiration_secs=0, rerun=True)
    assert lost_fws == running and len(lost_launches) == 1
    files.gate.unlink()

    # a worker without the store configuration fails its firework, saying what to do
    unconfigured = {k: v for k, v in files.env().items() if k != "MLIPFLOWS_CONFIG"}
    unconfigured["MLIPFLOWS_HOME"] = str(tmp_path / "elsewhere")
    finish(files.worker("unconfigured", ("singleshot",), unconfigured))
    launch = lp.launches.find_one({"state": "FIZZLED", "action": {"$ne": None}})
    message = launch["action"]["stored_data"]["_exception"]["_stacktrace"]
    assert "but the campaign was submitted to mongodb database" in message and "MLIPFLOWS_CONFIG" in message
    lp.rerun_fw(launch["fw_id"])

    finish(files.worker("rescuer"))

    _all_completed_once(lp, n_fireworks)
    check_stored_once(files.results_db(), files.name, n_relax, N_CANDIDATES)


def test_server_stopped_mid_write_names_the_uri_and_a_rerun_completes(tmp_path, monkeypatch):
    server = SecantusServer(tmp_path / "db").start()
    try:
        files = CampaignFiles.create(tmp_path, server, timeout_ms=1500)
        files.gate.touch()
        cmd = [str(BIN / "mlipflows"), "campaign", "run", str(files.spec)]
        run = subprocess.Popen(
            cmd, env=files.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        files.wait_for_gate(run)
        server.stop()  # the chunk is computed; its results go to a server that is gone
        files.gate.unlink()
        out, err = run.communicate(timeout=120)
        assert run.returncode == 2, out + err
        text = " ".join((out + err).split())  # rich wraps long lines
        assert PASSWORD not in text
        assert f"screener:****@127.0.0.1:{server.port}" in text and "did not answer" in text, text

        server.start()  # same port, same data
        rerun = subprocess.run(cmd, env=files.env(), capture_output=True, text=True, timeout=180)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert f"{N_CANDIDATES} stability results" in rerun.stdout
        n_relax = int(re.search(r"(\d+) structures to relax \(0 already stored\)", text).group(1))
        check_stored_once(files.results_db(), files.name, n_relax, N_CANDIDATES)
    finally:
        server.stop()


def test_a_funnel_on_two_workers_with_a_killed_one_equals_run_locally(tmp_path, mongo_server, monkeypatch):
    """relax → hull → phonons → elastic → eos on FireWorks: the stage jobs expand into chunk
    fireworks (detours) when they run; two workers share them, one is killed inside the
    phonon stage and recovered with detect_lostruns; every firework runs once and the results
    equal those of run_locally on the same spec."""
    from jobflow import run_locally

    from mlipflows.campaign.run import plan_campaign
    from mlipflows.campaign.status import campaign_status

    files = CampaignFiles.create(tmp_path, mongo_server, template=FUNNEL_SPEC)
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(files.config))
    lp = load_launchpad(files.launchpad)
    lp.reset("", require_password=False)
    sub = submit_campaign(load_spec(files.spec), get_job_store(), lp)
    n_submitted = len(sub.fw_ids)
    assert n_submitted == sub.plan.n_relax_chunks + 1 + 3  # relax chunks, the hull, 3 stage jobs
    # before any worker: `campaign status` already lists the declared stages
    waiting = {s.stage: s.state for s in campaign_status(get_job_store(), files.name)}
    assert waiting == dict.fromkeys(("phonons", "elastic", "eos"), "not run yet")

    files.gate.touch()  # the first phonon supercell evaluation waits here
    gated = {**files.env(), "MLIPFLOWS_TEST_GATE_MIN_ATOMS": "8"}
    doomed = files.worker("doomed", env=gated)
    assert files.wait_for_gate(doomed, timeout_s=180) == doomed.pid
    os.kill(doomed.pid, signal.SIGKILL)
    doomed.communicate(timeout=30)
    _, lost_fws, _ = lp.detect_lostruns(expiration_secs=0, rerun=True)
    assert len(lost_fws) == 1
    files.gate.unlink()

    workers = [files.worker("w1"), files.worker("w2")]
    for w in workers:
        finish(w, timeout_s=300)
    fireworks = list(lp.fireworks.find({}, {"state": 1, "name": 1}))
    fizzled = [
        la["action"]["stored_data"]["_exception"]["_stacktrace"][-3500:].replace("\n", " | ")
        for la in lp.launches.find({"state": "FIZZLED", "action": {"$ne": None}})
    ]
    assert Counter(fw["state"] for fw in fireworks) == {"COMPLETED": len(fireworks)}, fizzled
    # the expansions added one firework per chunk (plus each stage's check), never per structure
    assert len(fireworks) > n_submitted
    launches = Counter(la["fw_id"] for la in lp.launches.find({"state": "COMPLETED"}, {"fw_id": 1}))
    assert set(launches.values()) == {1}

    db = files.results_db()
    docs = list(db.results.find({"campaign": files.name}, {"_id": 0}))
    assert len(docs) == len({d["uuid"] for d in docs})
    keyed = {(d.get("stage"), d["task_type"], d["structure_id"]): d for d in docs}
    assert len(keyed) == len(docs)
    manifests = {d["stage"]: d for d in docs if d["task_type"] == "manifest"}
    assert set(manifests) == {"phonons", "elastic", "eos"} and manifests["phonons"]["n_selected"] == 3
    assert {m["state"] for m in manifests.values()} == {"done"}

    # the same spec with run_locally in an embedded store: the same results
    monkeypatch.delenv("MLIPFLOWS_CONFIG")
    store = get_job_store()
    plan = plan_campaign(load_spec(files.spec), store)
    run_locally(plan.flow, store=store, log=False, ensure_success=True)
    local = store.additional_stores["results"]
    local.connect()
    here = {
        (d.get("stage"), d["task_type"], d["structure_id"]): d for d in local.query({"campaign": files.name})
    }
    assert set(here) == set(keyed)
    for key, d in keyed.items():
        for field in ("e_above_hull", "min_frequency", "k_vrh", "b0"):
            if d.get(field) is not None:
                assert here[key][field] == pytest.approx(d[field], rel=1e-6, abs=1e-9), (key, field)


def test_a_dry_run_adds_nothing_and_an_unreset_launchpad_is_one_line(tmp_path, mongo_server, monkeypatch):
    files = CampaignFiles.create(tmp_path, mongo_server)
    monkeypatch.setenv("MLIPFLOWS_CONFIG", str(files.config))
    args = ["campaign", "submit", str(files.spec), "--launchpad", str(files.launchpad)]
    dry = CliRunner().invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"{N_CANDIDATES} candidates" in dry.output and "nothing added to the LaunchPad" in dry.output
    lp = load_launchpad(files.launchpad)
    assert lp.fireworks.count_documents({}) == 0
    unreset = CliRunner().invoke(app, args)  # this LaunchPad database was never `lpad reset`
    assert unreset.exit_code == 2 and "lpad -l my_launchpad.yaml reset" in " ".join(unreset.output.split())
    assert "Traceback" not in unreset.output
