"""The configuration templates in workflows/ load as what they claim to be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mlipflows.campaign.submit import launchpad_location, load_launchpad
from mlipflows.store import load_store_settings

WORKFLOWS = Path(__file__).parents[2] / "workflows"


def test_mlipflows_yaml_and_launchpad_templates():
    settings = load_store_settings(config=WORKFLOWS / "mlipflows.yaml")
    assert settings.uri.startswith("mongodb://") and settings.data_backend == "gridfs"
    lp = load_launchpad(WORKFLOWS / "my_launchpad.yaml")  # the client connects lazily
    assert lp.name == "fireworks" and "CHANGE-ME" not in launchpad_location(lp)


def test_jobflow_yaml_makes_the_mlipflows_store_jobflows_default(tmp_path):
    code = (
        "from jobflow import SETTINGS; from mlipflows.store import store_identity; "
        "s = SETTINGS.JOB_STORE; s._resolve(); print(type(s).__name__, store_identity(s))"
    )
    env = {
        "JOBFLOW_CONFIG_FILE": str(WORKFLOWS / "jobflow.yaml"),
        "MLIPFLOWS_CONFIG": str(WORKFLOWS / "mlipflows.yaml"),
        "PYTHONPATH": str(WORKFLOWS.parent),
        "MLIPFLOWS_HOME": str(tmp_path),
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert "ConfiguredJobStore {'backend': 'mongodb', 'database': 'mlipflows'}" in out.stdout
