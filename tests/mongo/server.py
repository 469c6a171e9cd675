"""A SecantusDB server (MongoDB wire protocol on WiredTiger) for tests, with a password.

SecantusDB is GPL-2.0 beta software: it is a *test* dependency only (the ``test`` extra) and
never imported by ``mlipflows``. It runs in the test process, on 127.0.0.1 and a free port;
clients (our stores, FireWorks, ``rlaunch`` subprocesses) reach it over real TCP.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

import pymongo

USER = "screener"
PASSWORD = "s3cret-Pa55"  # the secret tests look for in logs, errors, documents and reports


_FIND_AND_MODIFY_LOCK = threading.Lock()


def serialise_find_and_modify() -> None:
    """Make SecantusDB's ``findAndModify`` atomic, as MongoDB's is, by running one at a time.

    SecantusDB 0.7.0b3 finds the document, then writes it keyed by ``_id`` plus the original
    query and returns the document it *found*. With an empty query (FireWorks' id counter:
    ``find_one_and_update({}, {"$inc": {"next_launch_id": 1}})``) two concurrent calls both
    succeed and return the same pre-image, so two ``rlaunch`` workers can get the same launch
    id and one launch document overwrites the other (seen once in CI: 7 fireworks COMPLETED,
    6 COMPLETED launches). Measured: 3 processes × 2,000 ``$inc`` calls returned 4,349 unique
    values unserialised, 6,000 with this lock. The server runs in the test process, so a lock
    around the command handler fixes it without touching FireWorks or mlipflows.
    """
    from secantus import commands

    for name in ("findAndModify", "findandmodify"):
        handler = commands._HANDLERS[name]
        if getattr(handler, "serialised", False):
            continue

        def serialised(doc: dict, ctx: object, _handler=handler) -> dict:
            with _FIND_AND_MODIFY_LOCK:
                return _handler(doc, ctx)

        serialised.serialised = True  # type: ignore[attr-defined]
        commands._HANDLERS[name] = serialised


class SecantusServer:
    """Start / stop / restart (same port, same data) a SecantusDB server that requires auth."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = 0
        self._server = None

    def start(self) -> SecantusServer:
        from secantus import SecantusDBServer

        first = self.port == 0
        if first:  # create the user on an open server, then restart it with auth required
            self._serve(require_auth=False)
            client = pymongo.MongoClient(self.uri("admin", auth=False), serverSelectionTimeoutMS=5000)
            client.admin.command("createUser", USER, pwd=PASSWORD, roles=["root"])
            client.close()
            self.stop()
        self._serve(require_auth=True)
        assert isinstance(self._server, SecantusDBServer)
        return self

    def _serve(self, require_auth: bool) -> None:
        from secantus import SecantusDBServer

        serialise_find_and_modify()
        self._server = SecantusDBServer(
            host="127.0.0.1", port=self.port, storage_path=str(self.path), require_auth=require_auth
        )
        self._server.start()
        self.port = self._server.address[1]

    def stop(self) -> None:
        """Stop serving; the port is free again at once (restart binds the same one)."""
        if self._server is None:
            return
        # accept() in the server thread keeps the socket listening after close(): shut it down
        with contextlib.suppress(OSError):
            self._server._socket.shutdown(socket.SHUT_RDWR)
        self._server.stop()
        self._server = None

    def uri(self, database: str = "", auth: bool = True, timeout_ms: int = 5000) -> str:
        """``mongodb://user:password@127.0.0.1:PORT/DATABASE?...`` (no credentials with auth=False)."""
        cred = f"{USER}:{PASSWORD}@" if auth else ""
        query = f"?authSource=admin&serverSelectionTimeoutMS={timeout_ms}" if auth else ""
        return f"mongodb://{cred}127.0.0.1:{self.port}/{database}{query}"
