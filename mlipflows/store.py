"""JobStore construction: an embedded MontyDB (sqlite) store by default, MongoDB from a URI.

Layout (same names in both back ends):

- ``jobs``     jobflow job documents (outputs reference big arrays in ``data``)
- ``data``     big arrays: forces, trajectories (GridFS on MongoDB)
- ``results``  one flat, queryable document per structure per calculation

Configuration, first found wins: the ``uri`` argument, ``$MLIPFLOWS_STORE_URI``, the ``store``
section of ``mlipflows.yaml`` (``$MLIPFLOWS_CONFIG``, ./mlipflows.yaml,
$MLIPFLOWS_HOME/mlipflows.yaml), else the embedded store under ``$MLIPFLOWS_HOME``
(default ``~/.mlipflows``).

FireWorks workers resolve the store *on their own machine* through :class:`ConfiguredJobStore`
(what ``mlipflows campaign submit`` embeds in every firework): the LaunchPad never holds a
password, and a worker without a configuration fails loudly instead of writing to jobflow's
default in-memory store.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from jobflow import JobStore
from maggma.core import Store
from maggma.stores import GridFSStore, MemoryStore, MongoStore, MontyStore
from monty.json import jsanitize
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pymongo.errors import PyMongoError

from mlipflows.errors import StoreConfigError
from mlipflows.home import mlipflows_home
from mlipflows.schemas import INDEXED_FIELDS

log = logging.getLogger(__name__)

RESULTS = "results"
DATA = "data"


class StoreSettings(BaseModel):
    """The ``store`` section of ``mlipflows.yaml``."""

    # a misspelt key ("databse") would otherwise be dropped and its default used in silence
    model_config = ConfigDict(extra="forbid")

    uri: str | None = Field(None, description="mongodb:// or mongodb+srv:// URI; None = embedded")
    database: str = "mlipflows"
    jobs_collection: str = "jobs"
    results_collection: str = RESULTS
    data_collection: str = DATA
    data_backend: str = Field("gridfs", pattern="^(gridfs|mongo)$")
    path: str | None = Field(None, description="embedded store folder (default $MLIPFLOWS_HOME/db)")
    timeout_ms: int = Field(
        10_000, gt=0, description="ms to wait for an unreachable MongoDB before failing (pymongo: 30 s)"
    )

    @field_validator("uri")
    @classmethod
    def _mongodb_scheme(cls, v: str | None) -> str | None:
        # a path or a mistyped scheme would otherwise surface as "the server did not answer"
        if v is not None and not re.match(r"mongodb(\+srv)?://", v):
            raise ValueError(f"{v!r} is not a MongoDB URI (mongodb://… or mongodb+srv://…)")
        return v


class StoreUnavailableError(StoreConfigError):
    """MongoDB did not answer (down, unreachable, wrong credentials); the message names the
    URI with its password hidden."""


def redact_uri(text: str) -> str:
    """Hide the password of every URI in ``text`` (``user:****@host``), whatever its scheme
    (a mistyped ``mongo://`` in an error message is still somebody's password)."""
    return re.sub(r"([A-Za-z][\w+.-]*://[^:/@\s]+):[^@\s]+@", r"\1:****@", text)


def _uri_database(uri: str | None) -> str | None:
    """The database named in a URI's path (``mongodb://h:1/NAME?...``), without DNS look-ups."""
    m = re.match(r"mongodb(?:\+srv)?://[^/]+/([^?/]+)", uri or "")
    return m.group(1) if m else None


def _config_file() -> Path | None:
    named = os.environ.get("MLIPFLOWS_CONFIG")
    if named and not Path(named).expanduser().is_file():
        # falling through to the embedded store would put a campaign's results where nobody looks
        raise StoreConfigError(f"MLIPFLOWS_CONFIG={named}: no such file")
    candidates = [
        named,
        "mlipflows.yaml",
        mlipflows_home() / "mlipflows.yaml",
    ]
    for c in candidates:
        if c and Path(c).expanduser().is_file():
            return Path(c).expanduser()
    return None


def load_store_settings(uri: str | None = None, config: str | Path | None = None) -> StoreSettings:
    """Resolve the store settings (see the module docstring for the search order)."""
    data: dict[str, Any] = {}
    path = Path(config) if config else _config_file()
    if path is not None:
        try:
            content = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise StoreConfigError(f"{path}: cannot read store configuration ({exc})") from exc
        data = dict(content.get("store", {}) or {})
    env_uri = os.environ.get("MLIPFLOWS_STORE_URI")
    if uri or env_uri:
        data["uri"] = uri or env_uri
    named = _uri_database(data.get("uri"))
    if named and "database" not in data:  # mongodb://host/screening → database "screening"
        data["database"] = named
    try:
        return StoreSettings(**data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'store'}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise StoreConfigError(redact_uri(f"{path or 'store settings'}: {problems}")) from exc


class JSONDocument(dict):
    """A document already made of JSON types (e.g. pydantic ``model_dump(mode="json")``).

    Stores skip re-sanitising it: the recursive walk cost ~0.5 ms per result document.
    """


class BulkMontyStore(MontyStore):
    """MontyStore whose ``update`` inserts new documents in one ``insert_many``.

    MontyDB has no indexes: maggma's one ``replace_one(upsert=True)`` per document scans the
    collection each time, and even one ``$in`` query per call grows with the collection
    (quadratic over a campaign: measured 1 ms/document at 1k, 2.5 ms at 2k). So the keys in
    the collection are read once per store instance (one scan) and kept up to date as this
    instance writes; only documents whose key exists are replaced one by one. One process
    writes to an embedded store at a time (MontyDB's sqlite back end is single-writer anyway).
    """

    def connect(self, force_reset: bool = False) -> None:
        super().connect(force_reset=force_reset)
        if force_reset or not hasattr(self, "_known"):
            self._known: dict[tuple[str, ...], set[tuple]] = {}

    def close(self) -> None:
        self._known = {}
        super().close()

    def remove_docs(self, criteria: dict) -> None:
        self._known = {}
        super().remove_docs(criteria)

    def _known_keys(self, keys: tuple[str, ...]) -> set[tuple]:
        if keys not in self._known:
            projection = dict.fromkeys(keys, 1)
            self._known[keys] = {tuple(d.get(k) for k in keys) for d in self._collection.find({}, projection)}
        return self._known[keys]

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        docs = [
            d if isinstance(d, JSONDocument) else jsanitize(d, allow_bson=True)
            for d in (docs if isinstance(docs, list) else [docs])
        ]
        if not docs:
            return
        keys = tuple([key] if isinstance(key, str) else list(key or [self.key]))
        unique: dict[tuple, dict] = {}
        for d in docs:
            unique[tuple(d.get(k) for k in keys)] = d
        known = self._known_keys(keys)
        new = [d for k, d in unique.items() if k not in known]
        if new:
            self._collection.insert_many(new)
        for k, d in unique.items():
            if k in known:
                self._collection.replace_one(dict(zip(keys, k, strict=True)), d, upsert=True)
        known.update(unique)


def _embedded_stores(settings: StoreSettings) -> tuple[Store, Store, Store]:
    folder = Path(settings.path).expanduser() if settings.path else mlipflows_home() / "db"
    folder.mkdir(parents=True, exist_ok=True)

    def monty(collection: str, key: str) -> BulkMontyStore:
        return BulkMontyStore(collection, database_path=str(folder), database_name=settings.database, key=key)

    return (
        monty(settings.jobs_collection, "uuid"),
        monty(settings.data_collection, "blob_uuid"),
        monty(settings.results_collection, "uuid"),
    )


def _mongo_stores(settings: StoreSettings) -> tuple[Store, Store, Store]:
    kw: dict[str, Any] = {
        "uri": settings.uri,
        "mongoclient_kwargs": {"serverSelectionTimeoutMS": settings.timeout_ms},
    }
    db = settings.database
    jobs = MongoStore(db, settings.jobs_collection, key="uuid", **kw)
    if settings.data_backend == "gridfs":
        data: Store = GridFSStore(db, settings.data_collection, key="blob_uuid", **kw)
    else:
        data = MongoStore(db, settings.data_collection, key="blob_uuid", **kw)
    results = MongoStore(db, settings.results_collection, key="uuid", **kw)
    return jobs, data, results


def get_job_store(uri: str | None = None, config: str | Path | None = None) -> JobStore:
    """A jobflow ``JobStore`` with ``data`` and ``results`` additional stores.

    Args:
        uri: MongoDB URI (overrides configuration); None = use configuration or embedded.
        config: path of an ``mlipflows.yaml`` (default: search order in the module docstring).
    """
    settings = load_store_settings(uri, config)
    jobs, data, results = _mongo_stores(settings) if settings.uri else _embedded_stores(settings)
    return JobStore(jobs, additional_stores={DATA: data, RESULTS: results})


class ConfiguredJobStore(JobStore):
    """A JobStore that serializes as a *reference* and is built from the local configuration.

    ``mlipflows campaign submit`` embeds one in every firework. On the worker, ``connect``
    (called by jobflow's ``JobFiretask`` before the job runs) resolves ``mlipflows.yaml`` /
    ``$MLIPFLOWS_STORE_URI`` *there*, so the LaunchPad holds no URI or password, and any
    configuration problem fails that firework with its message instead of crashing the
    worker. It refuses a store that differs in kind or database from the one the campaign was
    submitted to (e.g. a worker without configuration, which would otherwise write results to
    a local embedded store nobody reads).
    """

    def __init__(self, config: str | None = None, expect: dict[str, str] | None = None) -> None:
        # placeholders until connect(): nothing is read or opened where the object is built
        placeholders = {DATA: MemoryStore(DATA), RESULTS: MemoryStore(RESULTS)}
        super().__init__(MemoryStore("jobs"), additional_stores=placeholders)
        self.config = config
        self.expect = expect
        self._resolved = False

    @classmethod
    def reference(cls, store: JobStore, config: str | None = None) -> ConfiguredJobStore:
        """What to embed in fireworks: ``config`` (a path on the workers) and ``store``'s identity."""
        return cls(config, expect=store_identity(store))

    def as_dict(self) -> dict[str, Any]:
        return {
            "@module": type(self).__module__,
            "@class": type(self).__name__,
            "config": self.config,
            "expect": self.expect,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ConfiguredJobStore:
        return cls(config=d.get("config"), expect=d.get("expect"))

    def _resolve(self) -> None:
        settings = load_store_settings(config=self.config)
        jobs, data, results = _mongo_stores(settings) if settings.uri else _embedded_stores(settings)
        self.docs_store = jobs
        self.additional_stores = {DATA: data, RESULTS: results}
        self._resolved = True

    def connect(self, force_reset: bool = False) -> None:
        if not self._resolved:
            self._resolve()
        found = store_identity(self)
        expect = self.expect or found  # jobflow.yaml use: whatever this machine configures
        if found != expect:
            where = {k: f" at {d['path']}" if d.get("path") else "" for k, d in (("f", found), ("e", expect))}
            raise StoreConfigError(
                f"this worker's store is {found['backend']} database {found['database']!r}{where['f']}, "
                f"but the campaign was submitted to {expect['backend']} database "
                f"{expect['database']!r}{where['e']}: "
                "give the worker the same mlipflows.yaml (MLIPFLOWS_CONFIG=/path/to/mlipflows.yaml) "
                "or MLIPFLOWS_STORE_URI"
            )
        with store_errors(self, "connecting"):
            super().connect(force_reset=force_reset)


def store_identity(store: JobStore) -> dict[str, str]:
    """Back end ("mongodb" / "embedded") and database name of ``store``'s results (no secrets).

    An embedded store is also named by its folder: a worker whose ``MLIPFLOWS_HOME`` differs
    (another node, another user) would write into a file nobody reads."""
    results = store.additional_stores[RESULTS]
    if isinstance(results, MontyStore):
        path = str(Path(results.database_path).expanduser().resolve())
        return {"backend": "embedded", "database": str(results.database_name), "path": path}
    return {"backend": "mongodb", "database": str(getattr(results, "database", None))}


def describe_store(store: JobStore) -> str:
    """Where results go, with any password hidden."""
    results = store.additional_stores.get(RESULTS, store.docs_store)
    if isinstance(results, MontyStore):
        return f"embedded MontyDB at {results.database_path} (database {results.database_name})"
    uri = getattr(results, "uri", None)
    return redact_uri(f"MongoDB {uri} (database {results.database})" if uri else f"MongoDB {results.name}")


@contextmanager
def store_errors(where: JobStore | str, action: str) -> Iterator[None]:
    """Turn driver errors into :class:`StoreUnavailableError` naming the (redacted) store.

    ``where`` is a JobStore or a description of the server (e.g. a LaunchPad's location).
    """
    try:
        yield
    except PyMongoError as exc:
        name = where if isinstance(where, str) else describe_store(where)
        # pymongo appends its whole topology description: the reason comes before it
        reason = str(exc).split(", Timeout:")[0].split(", Topology Description:")[0]
        raise StoreUnavailableError(redact_uri(f"{action} failed: {name} did not answer: {reason}")) from None


def connect_store(store: JobStore) -> JobStore:
    """Connect and check the server answers (``ping``), with a clear error when it does not."""
    with store_errors(store, "connecting"):
        store.connect()
        if _is_mongodb(store):
            store.additional_stores[RESULTS]._collection.database.client.admin.command("ping")
    return store


def _is_mongodb(store: JobStore) -> bool:
    """A real MongoDB server behind the results (MontyStore subclasses MongoStore in maggma)."""
    results = store.additional_stores[RESULTS]
    return isinstance(results, MongoStore) and not isinstance(results, MontyStore | MemoryStore)


# Query shapes that combine fields: a server may use only one index per query (SecantusDB
# scans the collection unless one index covers the filter: 1.4 s → 45 ms for 5k documents).
COMPOUND_INDEXES = (
    ("campaign", "task_type", "e_above_hull"),  # a campaign's stability table, sorted
    ("campaign", "chemsys", "e_above_hull"),  # one chemical system of a campaign
    ("campaign", "task_type", "model.checksum"),  # what a resumed campaign skips
    ("structure_id", "campaign", "model.name"),  # per-structure joins across task types
)


def ensure_indexes(store: JobStore) -> list[str]:
    """Index the fields users query on; returns the indexed result fields.

    Single-field indexes on ``INDEXED_FIELDS`` plus :data:`COMPOUND_INDEXES`. ``uuid`` is
    unique in ``results`` (a rerun replaces a result, never duplicates it; without this index
    maggma's upserts scan the collection: 2,000 documents took 88 s instead of 5 s) and jobs
    are indexed on (``uuid``, ``index``) as jobflow looks them up. MontyDB has no indexes:
    nothing to do there.
    """
    if not _is_mongodb(store):
        return []
    results = store.additional_stores[RESULTS]
    with store_errors(store, "creating indexes"):
        store.connect()
        if not results.ensure_index("uuid", unique=True):  # maggma swallows the reason
            log.warning(
                "results.uuid is not a unique index (duplicate uuids stored already?): "
                "reruns may duplicate results in %s",
                describe_store(store),
            )
        for field in INDEXED_FIELDS:
            if field != "uuid":
                results.ensure_index(field)
        for fields in COMPOUND_INDEXES:
            results._collection.create_index([(f, 1) for f in fields])
        store.docs_store.ensure_index("uuid")
        store.docs_store._collection.create_index([("uuid", 1), ("index", 1)])
    return list(INDEXED_FIELDS)


def stored_results(
    store: JobStore, criteria: dict[str, Any], properties: list[str] | dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """The flat result documents matching ``criteria`` (what a rerun or a benchmark can reuse)."""
    results = store.additional_stores[RESULTS]
    with store_errors(store, "reading stored results"):
        results.connect()
        return list(results.query(criteria, properties=properties or {"_id": 0}))


def write_results(store: JobStore, documents: list[dict[str, Any]]) -> None:
    """Write flat result documents (JSON types only) in bulk (one call), upserting by ``uuid``."""
    results = store.additional_stores.get(RESULTS)
    if results is None or not documents:
        return
    with store_errors(store, f"writing {len(documents)} results"):
        if any(d.get("tags") for d in documents):
            documents = _with_earlier_tags(results, documents)
        results.update([JSONDocument(d) for d in documents], key="uuid")


def _with_earlier_tags(results: Any, documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A rerun under another ``--tag`` replaces the document (same uuid) but keeps it in the
    earlier tags too, so a tag stays a way to group runs. Only read when the batch has tags:
    on MontyDB every query scans the collection."""
    results.connect()
    uuids = [d["uuid"] for d in documents]
    earlier = {
        e["uuid"]: e.get("tags") or []
        for e in results.query({"uuid": {"$in": uuids}}, ["uuid", "tags"])
        if e.get("tags")
    }
    merged = []
    for d in documents:
        old = earlier.get(d["uuid"], [])
        merged.append({**d, "tags": list(dict.fromkeys([*(d.get("tags") or []), *old]))} if old else d)
    return merged
