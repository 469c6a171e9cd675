"""The engine is usable on its own: a GPU node or a notebook needs no workflow stack for it."""

from __future__ import annotations

import os
import subprocess
import sys

RUN = """
import sys
from pymatgen.core import Lattice, Structure
from mlipflows.engine import relax, static
from mlipflows.potentials import load_potential

cu = Structure(Lattice.cubic(3.7), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
pot = load_potential("morse")
assert relax([cu], pot)[0].ok  # with the sanity guard, whose elemental cache lives in the home
assert static([cu], pot)[0].ok
print(sorted(m for m in ("jobflow", "maggma", "fireworks", "phono3py") if m in sys.modules))
"""


def test_relax_and_static_import_no_workflow_stack(tmp_path):
    env = {**os.environ, "MLIPFLOWS_HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "cache" / "elemental-energies").is_dir()  # the home was used, not ~
