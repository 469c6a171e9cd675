from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

EXAMPLES = Path(__file__).parents[1] / "mlipflows" / "data" / "examples"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """Every test gets its own embedded store and no user configuration."""
    monkeypatch.setenv("MLIPFLOWS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLIPFLOWS_STORE_URI", raising=False)
    monkeypatch.delenv("MLIPFLOWS_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path / "home"


def varied_structures(rattle: float = 0.05, seed: int = 0) -> list[Structure]:
    """Eight structurally different crystals, strained and rattled off equilibrium."""
    atoms = [
        bulk("Si", "diamond", 5.55, cubic=True),
        bulk("NaCl", "rocksalt", 5.5),
        bulk("Cu", "fcc", 3.7) * (2, 1, 1),
        bulk("Mg", "hcp", 3.25),
        bulk("Fe", "bcc", 2.9) * (2, 2, 1),
        bulk("GaAs", "zincblende", 5.75),
        bulk("MgO", "rocksalt", 4.3, cubic=True),
        bulk("ZnO", "wurtzite", a=3.3, c=5.25),
    ]
    rng = np.random.default_rng(seed)
    out = []
    for k, a in enumerate(atoms):
        a.rattle(rattle, seed=seed + k)
        strain = np.eye(3) + rng.normal(scale=0.01, size=(3, 3))
        a.set_cell(a.cell @ strain, scale_atoms=True)
        out.append(AseAtomsAdaptor.get_structure(a))
    return out


@pytest.fixture
def structures() -> list[Structure]:
    return varied_structures()


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A SecantusDB server (MongoDB wire protocol) with a password, for the whole session."""
    pytest.importorskip("secantus", reason="SecantusDB (the test extra: pip install secantusdb) is missing")
    from tests.mongo.server import SecantusServer

    server = SecantusServer(tmp_path_factory.mktemp("secantus")).start()
    yield server
    server.stop()


@pytest.fixture
def mongo_uri(mongo_server) -> str:
    """URI (with password) of a fresh database on the session server."""
    return mongo_server.uri(f"t{uuid.uuid4().hex[:12]}")
