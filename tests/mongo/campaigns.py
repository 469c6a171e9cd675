"""A tiny campaign on SecantusDB with FireWorks: files, worker processes, checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pymongo
import yaml

from tests.mongo.server import PASSWORD, SecantusServer

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent

# 3 candidates and the elemental references (Mg, Ca, Sr polymorphs, O2) in chunks of 3, then the hull.
SPEC = """\
name: {name}
model: tests.mongo.gate:gated_morse
device: cpu
chunk_size: 3
relax: {{fmax: 0.05, max_steps: 200, cell_filter: frechet}}
candidates:
  prototypes:
    - prototype: rocksalt
      sites: {{A: [Mg, Ca, Sr], B: [O]}}
hull:
  mode: mlip
"""


# the same three candidates and their hull, then a three-stage funnel (each stage in chunks)
FUNNEL_SPEC = (
    SPEC.replace(
        "rocksalt\n      sites: {{A: [Mg, Ca, Sr], B: [O]}}", "fcc\n      sites: {{A: [Cu, Ag, Au, Ni]}}"
    )
    + """\
stages:
  - name: phonons
    kind: phonons
    select: {{where: "e_above_hull < 0.5", max: 3}}
    settings: {{min_length: 7, mesh: [4, 4, 4], fmax: 0.001}}
    chunk_size: 2
  - name: elastic
    kind: elastic
    settings: {{fmax: 0.005}}
    chunk_size: 2
  - name: eos
    kind: eos
    settings: {{n_points: 5}}
"""
)


@dataclass
class CampaignFiles:
    """Spec, LaunchPad file, mlipflows.yaml and the environment workers get."""

    dir: Path
    name: str
    spec: Path
    launchpad: Path
    config: Path
    results_uri: str
    gate: Path
    loads: Path

    @classmethod
    def create(
        cls, tmp_path: Path, server: SecantusServer, timeout_ms: int = 10_000, template: str = SPEC
    ) -> CampaignFiles:
        tag = uuid.uuid4().hex[:8]
        name = f"rocksalts-{tag}"
        spec = tmp_path / "spec.yaml"
        spec.write_text(template.format(name=name))
        launchpad = tmp_path / "my_launchpad.yaml"
        launchpad.write_text(
            yaml.safe_dump({"host": server.uri(f"fw{tag}"), "uri_mode": True, "name": f"fw{tag}"})
        )
        results_uri = server.uri(f"res{tag}")
        config = tmp_path / "mlipflows.yaml"
        config.write_text(yaml.safe_dump({"store": {"uri": results_uri, "timeout_ms": timeout_ms}}))
        return cls(
            tmp_path, name, spec, launchpad, config, results_uri, tmp_path / "gate", tmp_path / "loads"
        )

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "MLIPFLOWS_CONFIG": str(self.config),
            "PYTHONPATH": str(ROOT),
            "MLIPFLOWS_TEST_GATE": str(self.gate),
            "MLIPFLOWS_TEST_LOADS": str(self.loads),
            "OMP_NUM_THREADS": "1",
        }

    def worker(
        self, label: str, mode: tuple[str, ...] = (), env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """A plain ``rlaunch rapidfire`` that stops when nothing is left to run (or ``mode``)."""
        cwd = self.dir / label
        cwd.mkdir()
        mode = mode or ("rapidfire", "--nlaunches", "0", "--sleep", "1")
        return subprocess.Popen(
            [str(BIN / "rlaunch"), "-l", str(self.launchpad), *mode],
            cwd=cwd,
            env=env or self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_for_gate(self, proc: subprocess.Popen, timeout_s: float = 90.0) -> int:
        """Block until a process is held at the gate; returns its pid."""
        entered = Path(f"{self.gate}.entered")
        deadline = time.monotonic() + timeout_s
        while not entered.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                out = proc.stdout.read() if proc.stdout else ""
                raise AssertionError(f"never reached the gate (rc {proc.returncode}):\n{out[-3000:]}")
            time.sleep(0.05)
        time.sleep(0.1)  # the pid is written before the file is closed
        return int(entered.read_text())

    def results_db(self) -> pymongo.database.Database:
        client = pymongo.MongoClient(self.results_uri)
        return client.get_default_database()


def finish(proc: subprocess.Popen, timeout_s: float = 180.0) -> str:
    """Wait for a worker; its output (asserted to contain no password)."""
    out, _ = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, out[-3000:]
    assert PASSWORD not in out
    return out


def check_stored_once(db: pymongo.database.Database, campaign: str, n_relax: int, n_candidates: int) -> None:
    """Every relaxation and stability result stored exactly once; jobs (uuid, index) unique."""
    docs = list(db.results.find({"campaign": campaign}, {"uuid": 1, "structure_id": 1, "task_type": 1}))
    assert len(docs) == len({d["uuid"] for d in docs})
    per_kind = Counter(d["task_type"] for d in docs)
    assert per_kind == {"relax": n_relax, "stability": n_candidates}, per_kind
    pairs = Counter((d["task_type"], d["structure_id"]) for d in docs)
    assert max(pairs.values()) == 1
    jobs = Counter((j["uuid"], j["index"]) for j in db.jobs.find({}, {"uuid": 1, "index": 1}))
    assert jobs and max(jobs.values()) == 1


def assert_no_password(*databases: pymongo.database.Database) -> None:
    """No document in any collection of ``databases`` contains the password."""
    for db in databases:
        for name in db.list_collection_names():
            for doc in db[name].find({}):
                assert PASSWORD not in json.dumps(doc, default=str), f"password in {db.name}.{name}"
