"""Fixtures that start a SecantusDB server (skipped with the reason when it is not installed)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.mongo.server import SecantusServer

pytest.importorskip("secantus", reason="SecantusDB (pip install secantusdb, the test extra) is missing")


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecantusServer]:
    """One server for the session; each test takes its own database (``mongo_uri``)."""
    server = SecantusServer(tmp_path_factory.mktemp("secantus")).start()
    yield server
    server.stop()


@pytest.fixture
def mongo_uri(mongo_server: SecantusServer) -> str:
    """URI (with password) of a fresh database on the session server."""
    return mongo_server.uri(f"t{uuid.uuid4().hex[:12]}")
