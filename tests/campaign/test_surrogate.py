"""Surrogate campaigns: a fine-tuned student screens, the teacher (Morse here) decides near the hull."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from jobflow import run_locally
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.campaign import load_spec
from mlipflows.campaign.run import plan_campaign
from mlipflows.campaign.surrogate import choose_budget, descriptors
from mlipflows.io import Candidate
from mlipflows.prototypes import get_prototype
from mlipflows.store import RESULTS, get_job_store

ELEMENTS = {"A": ["Li", "Na", "K"], "B": ["F", "Cl", "Br"]}

SPEC = """\
name: surr
model: morse
chunk_size: 8
relax: {{fmax: 0.05, max_steps: 150}}
candidates:
  prototypes:
    - prototype: rocksalt
      sites: {{A: [Li, Na, K], B: [F, Cl, Br]}}
    - prototype: cscl
      sites: {{A: [Li, Na, K], B: [F, Cl, Br]}}
    - prototype: zincblende
      sites: {{A: [Li, Na, K], B: [F, Cl, Br]}}
hull: {{mode: mlip}}
surrogate:
  student: {student}
  budget: 10
  threshold: 0.05
  min_margin: 0.05
  calibration_fraction: 0.3
  replay_size: 8
  epochs: 3
  max_time_s: 60
  lr: 0.002
"""


def _labelled(structures: list, tag: str) -> list:
    """Morse energies, forces and stresses of ``structures`` as training samples."""
    import torch

    from mlipflows.engine import Batch
    from mlipflows.potentials import load_potential
    from mlipflows.training.data import Sample

    pot = load_potential("morse")
    out = []
    for s in structures:
        res = pot.evaluate(Batch.from_structures([s]), compute_stress=True)
        with torch.no_grad():
            out.append(
                Sample(
                    AseAtomsAdaptor.get_atoms(s),
                    float(res.energy[0]),
                    res.forces.numpy().astype(float),
                    res.stress[0].numpy().astype(float) / 160.21766208,
                    head="morse",
                    tag=tag,
                )
            )
    return out


@pytest.fixture
def base_student(tmp_path: Path) -> Path:
    """A tiny MPNICE student of Morse on rattled alkali halides, with its replay and held-out files."""
    from mlipflows.training import DatasetSpec, TrainConfig, train
    from mlipflows.training.data import write_extxyz

    rng = np.random.default_rng(0)
    structures = []
    for proto in ("rocksalt", "cscl", "zincblende", "fcc"):
        for a in ELEMENTS["A"]:
            for b in ELEMENTS["B"]:
                deco = {"A": a} if proto == "fcc" else {"A": a, "B": b}
                s = get_prototype(proto).build(deco)
                s.apply_strain(float(rng.normal(scale=0.03)))
                s.perturb(0.05)
                structures.append(s)
    samples = _labelled(structures, "base")
    folder = tmp_path / "student"
    replay = write_extxyz(samples[::2], folder / "tiny-replay.extxyz.gz")
    write_extxyz(samples[1::2], folder / "tiny-heldout.extxyz.gz")
    config = TrainConfig(
        name="tiny",
        architecture="mpnice",
        model={"n_channels": 8, "n_blocks": 1, "cutoff": 5.0, "electrostatics": False, "hidden": 16},
        datasets=[DatasetSpec(path=replay, head="morse", validation_fraction=0.2)],
        loss={"energy": 100.0, "forces": 1.0, "stress": 100.0},
        epochs=3,
        batch_size=4,
        output=folder / "tiny.pt",
    )
    train(config, show_progress=False)
    from mlipflows.models.checkpoint import load_model, save_checkpoint

    model, content = load_model(folder / "tiny.pt")  # a student of Morse, as `distill` records it
    save_checkpoint(
        model, folder / "tiny.pt", dict(content["metadata"], teacher="morse"), content["training"]
    )
    return folder / "tiny.pt"


def _stage(results, stage: str, task_type: str) -> list[dict]:
    return list(results.query({"campaign": "surr", "stage": stage, "task_type": task_type}))


def test_budget_spreads_over_composition_and_structure() -> None:
    cands = [
        Candidate(f"{p}-{a}{b}", get_prototype(p).build({"A": a, "B": b}), "p")
        for p in ("rocksalt", "cscl")
        for a in ELEMENTS["A"]
        for b in ELEMENTS["B"]
    ]
    x = descriptors([c.structure for c in cands])
    assert x.shape[0] == 18 and np.isfinite(x).all()
    # same composition, different prototype: the structure block tells them apart
    assert not np.allclose(x[0], x[9])
    picked = [cands[k].structure_id for k in choose_budget(cands, 6, seed=0)]
    assert len(set(picked)) == 6
    assert {p.split("-")[0] for p in picked} == {"rocksalt", "cscl"}
    # every element of the campaign is labelled at least once
    covered = {
        el.symbol for c in cands if c.structure_id in picked for el in c.structure.composition.elements
    }
    assert covered == {"Li", "Na", "K", "F", "Cl", "Br"}


def test_surrogate_campaign_teacher_decides_near_the_hull(tmp_path: Path, base_student: Path) -> None:
    spec_path = tmp_path / "surr.yaml"
    spec_path.write_text(SPEC.format(student=base_student))
    spec = load_spec(spec_path)
    store = get_job_store()
    plan = plan_campaign(spec, store)
    assert plan.n_to_relax > 27  # teacher labels + student screen of every candidate and reference
    run_locally(plan.flow, store=store, log=False, ensure_success=True)
    results = store.additional_stores[RESULTS]
    results.connect()

    tune = _stage(results, "finetune", "surrogate")[0]
    assert Path(tune["checkpoint"]).is_file()
    assert tune["n_replay"] == 8 and tune["n_calibration_candidates"] >= 1
    assert tune["forgetting"]["before"]["n"] == tune["forgetting"]["after"]["n"] > 0
    check = _stage(results, "check", "surrogate")[0]
    assert check["margin"] >= 0.05

    labelled = {d["structure_id"] for d in _stage(results, "label", "relax") if "candidate" in d["tags"]}
    assert len(labelled) == 10
    frames = {d["structure_id"] for d in _stage(results, "label-frames", "static")}
    assert frames == {f"{sid}~0" for sid in labelled}
    screened = _stage(results, "screen", "relax")
    assert len([d for d in screened if "candidate" in d["tags"]]) == 27
    student_hull = {d["structure_id"]: d for d in _stage(results, "screen-hull", "stability")}
    hull = {d["structure_id"]: d for d in _stage(results, "hull", "stability")}
    assert len(hull) == 27
    morse = "morse"
    for sid, doc in hull.items():
        near = student_hull[sid]["e_above_hull"] <= 0.05 + check["margin"]
        if sid in labelled or near:
            assert doc["decided_by"] == "teacher", sid
            assert doc["model"]["name"] == morse
        else:
            assert doc["decided_by"] == "student"
            assert doc["model"]["name"] != morse
        assert doc["student_e_above_hull"] == pytest.approx(student_hull[sid]["e_above_hull"])
    checked = {d["structure_id"] for d in _stage(results, "check", "relax")}
    assert checked == {sid for sid in hull if sid not in labelled and hull[sid]["decided_by"] == "teacher"}

    # resume: nothing relaxes again, the fine-tuned student is reused
    again = plan_campaign(load_spec(spec_path), store)
    assert again.n_to_relax == 0
    run_locally(again.flow, store=store, log=False, ensure_success=True)
    assert len(_stage(results, "hull", "stability")) == 27

    # the report counts each candidate once and shows who decided, with the parity plot
    from mlipflows.report import build_report, collect

    data = collect(store, "surr")
    assert data.n_candidates == 27
    assert data.surrogate.n_teacher + data.surrogate.n_student == 27
    page = build_report(store, "surr", tmp_path / "report").read_text()
    assert 'id="surrogate"' in page and "re-relaxed by the teacher" in page
    assert (tmp_path / "report" / "surrogate_parity.svg").is_file()

    # status lists the surrogate stages in run order with their counts
    from mlipflows.campaign.status import campaign_status

    stages = {s.stage: s for s in campaign_status(store, "surr")}
    assert list(stages) == ["label", "label-frames", "screen", "screen-hull", "check", "hull"]
    assert stages["screen-hull"].selected == 27 and stages["hull"].selected == 27
    assert stages["check"].selected == len(checked)

    # the CLI's hull and the run's summary are the final hull only, not the student's screen
    from typer.testing import CliRunner

    from mlipflows.cli import app

    shown = CliRunner().invoke(app, ["hull", "surr", "--limit", "0"])
    assert shown.exit_code == 0, shown.output
    rows = [line for line in shown.output.splitlines() if line.startswith("│")]
    assert len(rows) == 27 and len({r.split("│")[1].strip() for r in rows}) == 27, shown.output
    rerun = CliRunner().invoke(app, ["campaign", "run", str(spec_path)])
    assert rerun.exit_code == 0, rerun.output
    assert "27 stability results" in rerun.output, rerun.output
    assert f"fine-tuned student: {tune['checkpoint']}" in " ".join(rerun.output.split())
    dry = CliRunner().invoke(app, ["campaign", "run", str(spec_path), "--dry-run"])
    assert "relax, as a surrogate: label (morse relaxes 10 farthest-point" in " ".join(dry.output.split())


def test_side_by_side_benchmark_halves_in_two_stores(
    tmp_path: Path, base_student: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`benchmarks/surrogate_campaign.py`: teacher and surrogate halves in two work folders (so
    they can run at once), compared by the report with ``--teacher-work``."""
    import json
    import sys

    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    import surrogate_campaign

    spec = tmp_path / "surr.yaml"
    spec.write_text(SPEC.format(student=base_student))
    out = tmp_path / "metrics.json"

    def run(*argv: str) -> None:
        monkeypatch.setattr(sys, "argv", ["surrogate_campaign.py", str(spec), *argv])
        surrogate_campaign.main()

    run("--work", str(tmp_path / "teacher"), "--phase", "teacher")
    run("--work", str(tmp_path / "surrogate"), "--phase", "surrogate")
    nowhere = str(tmp_path / "none")
    with pytest.raises(FileNotFoundError):  # the teacher's timing is read from --teacher-work
        run("--work", str(tmp_path / "surrogate"), "--phase", "report", "--teacher-work", nowhere)
    run(
        "--work", str(tmp_path / "surrogate"), "--phase", "report",
        "--teacher-work", str(tmp_path / "teacher"), "--out", str(out),
    )  # fmt: skip
    metrics = json.loads(out.read_text())
    assert metrics["n_candidates"] == 27
    assert 0 < metrics["recall"] <= 1 and metrics["teacher_near_hull"] > 0
    _assert_best_margin_holds(metrics["best_margins"]["0.95"], tmp_path, 0.95)
    parts = metrics["parts_wall_s"]
    assert list(parts) == ["labelling", "fine-tuning", "student screen", "teacher check"]
    assert min(parts.values()) >= 0
    assert sum(parts.values()) <= metrics["timing"]["surrogate"]["wall_s"] + 1
    teacher_time = json.loads((tmp_path / "teacher" / "surr-timing.json").read_text())["teacher"]
    assert metrics["timing"]["teacher"] == teacher_time
    own = json.loads((tmp_path / "surrogate" / "surr-timing.json").read_text())
    assert "teacher" not in own
    assert metrics["speedup"] == pytest.approx(teacher_time["cpu_s"] / own["surrogate"]["cpu_s"])

    # teacher single points at the student's geometries: never below the teacher's own minimum
    import surrogate_rescore

    rescored = tmp_path / "rescore.json"
    halves = ["--work", str(tmp_path / "surrogate"), "--teacher-work", str(tmp_path / "teacher")]
    monkeypatch.setattr(sys, "argv", ["surrogate_rescore.py", "surr", *halves, "--out", str(rescored)])
    surrogate_rescore.main()
    rescore = json.loads(rescored.read_text())
    both = _two_halves(tmp_path)
    relaxed_by_both = [
        s for s, (t, st) in both.items() if t["state"] == "successful" and st["state"] == "successful"
    ]
    assert rescore["n_statics"] == len(relaxed_by_both) >= 27  # candidates and references
    assert rescore["static_minus_relaxed_ev_atom"]["q5"] > -0.05
    assert set(rescore["best_margins_teacher_static"]) == {"0.9", "0.95", "0.98"}


def _two_halves(tmp_path: Path) -> dict[str, tuple[dict, dict]]:
    """structure_id → (teacher-only hull document, student screen document) of the side by side."""
    from surrogate_report import _docs, _results_store

    teacher = _docs(_results_store(tmp_path / "teacher"), "surr-teacher", "hull", "stability")
    screen = _docs(_results_store(tmp_path / "surrogate"), "surr", "screen", "relax")
    return {s: (teacher[s], screen[s]) for s in teacher if s in screen}


def _assert_best_margin_holds(best: dict, tmp_path: Path, recall: float) -> None:
    """Recount, from the stores, what the best limit checks and finds (labelled candidates
    are the teacher's already; the others are checked when the student is within the limit)."""
    from surrogate_report import _docs, _results_store

    surrogate = _results_store(tmp_path / "surrogate")
    hull = _docs(surrogate, "surr", "hull", "stability")
    teacher = _docs(_results_store(tmp_path / "teacher"), "surr-teacher", "hull", "stability")
    labelled = set(_docs(surrogate, "surr", "label", "relax"))
    student = {s: hull[s].get("student_e_above_hull") for s in teacher if s in hull}
    checked = {
        s for s, e in student.items() if s not in labelled and (e is None or e <= best["student_limit"])
    }
    near = {s for s in student if teacher[s]["e_above_hull"] <= 0.05}
    assert len(near & (checked | labelled)) >= recall * len(near)
    assert best["share_checked"] == pytest.approx(len(checked) / len(set(student) - labelled))
    assert best["margin"] == pytest.approx(best["student_limit"] - 0.05)


def test_check_warns_when_the_margin_sends_most_candidates_back(
    tmp_path: Path, base_student: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec_path = tmp_path / "surr.yaml"
    spec_path.write_text(SPEC.format(student=base_student) + "  margin: 10.0\n")
    store = get_job_store()
    plan = plan_campaign(load_spec(spec_path), store)
    with caplog.at_level("WARNING", logger="mlipflows"):
        run_locally(plan.flow, store=store, log=False, ensure_success=True)
    results = store.additional_stores[RESULTS]
    results.connect()
    assert len(_stage(results, "check", "relax")) == 27 - 10  # every unlabelled candidate
    assert "a margin of 10.000 eV/atom sends 17 of 27 candidates to the teacher" in caplog.text


def test_report_warns_when_the_check_sends_most_candidates_back() -> None:
    from mlipflows.report_surrogate import SurrogateSummary, surrogate_html

    costly = SurrogateSummary(margin=1.15, threshold=0.05, n_checked=830, n_teacher=850, n_student=150)
    assert "83% of the candidates back" in surrogate_html(costly, None)
    cheap = SurrogateSummary(margin=0.1, threshold=0.05, n_checked=200, n_teacher=220, n_student=780)
    assert "banner" not in surrogate_html(cheap, None)


def test_best_margins_bound_what_any_margin_could_save(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[2] / "benchmarks"))
    from surrogate_report import best_margins

    teacher = {"a": 0.0, "b": 0.04, "c": 0.3, "d": 0.5, "e": 0.9}
    student = {"a": 0.02, "b": 0.35, "c": 0.2, "d": 0.6, "e": 0.4}
    out = best_margins(student, teacher, recalls=(0.5, 1.0))
    assert out["0.5"] == pytest.approx({"student_limit": 0.02, "margin": -0.03, "share_checked": 0.2})
    assert out["1.0"] == pytest.approx({"student_limit": 0.35, "margin": 0.3, "share_checked": 0.6})
    # b labelled (found before the check), e failed in the student (always checked): a suffices
    student["e"] = None
    out = best_margins(student, teacher, labelled={"b"}, recalls=(1.0,))
    assert out["1.0"] == pytest.approx({"student_limit": 0.02, "margin": -0.03, "share_checked": 0.5})
