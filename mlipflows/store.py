"""JobStore construction: an embedded MontyDB (sqlite) store by default, MongoDB from a URI.

Layout (same names in both back ends):

- ``jobs``     jobflow job documents (outputs reference big arrays in ``data``)
- ``data``     big arrays: forces, trajectories (GridFS on MongoDB)
- ``results``  one flat, queryable document per structure per calculation

Configuration, first found wins: the ``uri`` argument, ``$MLIPFLOWS_STORE_URI``, the ``store``
section of ``mlipflows.yaml`` (``$MLIPFLOWS_CONFIG``, ./mlipflows.yaml,
$MLIPFLOWS_HOME/mlipflows.yaml), else the embedded store under ``$MLIPFLOWS_HOME``
(default ``~/.mlipflows``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from jobflow import JobStore
from maggma.core import Store
from maggma.stores import GridFSStore, MongoStore, MontyStore
from monty.json import jsanitize
from pydantic import BaseModel, Field, ValidationError

from mlipflows.errors import StoreConfigError
from mlipflows.schemas import INDEXED_FIELDS

RESULTS = "results"
DATA = "data"


class StoreSettings(BaseModel):
    """The ``store`` section of ``mlipflows.yaml``."""

    uri: str | None = Field(None, description="mongodb:// or mongodb+srv:// URI; None = embedded")
    database: str = "mlipflows"
    jobs_collection: str = "jobs"
    results_collection: str = RESULTS
    data_collection: str = DATA
    data_backend: str = Field("gridfs", pattern="^(gridfs|mongo)$")
    path: str | None = Field(None, description="embedded store folder (default $MLIPFLOWS_HOME/db)")


def mlipflows_home() -> Path:
    return Path(os.environ.get("MLIPFLOWS_HOME", "~/.mlipflows")).expanduser()


def redact_uri(text: str) -> str:
    """Hide the password of every URI in ``text`` (``user:****@host``)."""
    return re.sub(r"(mongodb(?:\+srv)?://[^:/@\s]+):[^@\s]+@", r"\1:****@", text)


def _config_file() -> Path | None:
    candidates = [
        os.environ.get("MLIPFLOWS_CONFIG"),
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
    try:
        return StoreSettings(**data)
    except ValidationError as exc:
        raise StoreConfigError(redact_uri(f"{path or 'store settings'}: {exc}")) from exc


class BulkMontyStore(MontyStore):
    """MontyStore whose ``update`` inserts new documents in one ``insert_many``.

    MontyDB has no indexes, so maggma's one ``replace_one(upsert=True)`` per document scans the
    collection each time (quadratic in the number of results). Here existing keys are found
    with one query per call; only documents that already exist are replaced one by one.
    """

    def update(self, docs: list[dict] | dict, key: list | str | None = None) -> None:
        docs = [jsanitize(d, allow_bson=True) for d in (docs if isinstance(docs, list) else [docs])]
        if not docs:
            return
        keys = [key] if isinstance(key, str) else list(key or [self.key])
        unique: dict[tuple, dict] = {}
        for d in docs:
            unique[tuple(d.get(k) for k in keys)] = d
        first = keys[0]
        query = {first: {"$in": sorted({k[0] for k in unique}, key=str)}}
        projection = {k: 1 for k in keys}
        existing = {tuple(d.get(k) for k in keys) for d in self._collection.find(query, projection)}
        new = [d for k, d in unique.items() if k not in existing]
        if new:
            self._collection.insert_many(new)
        for k, d in unique.items():
            if k in existing:
                self._collection.replace_one(dict(zip(keys, k, strict=True)), d, upsert=True)


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
    uri = settings.uri
    db = settings.database
    jobs = MongoStore(db, settings.jobs_collection, uri=uri, key="uuid")
    if settings.data_backend == "gridfs":
        data: Store = GridFSStore(db, settings.data_collection, uri=uri, key="blob_uuid")
    else:
        data = MongoStore(db, settings.data_collection, uri=uri, key="blob_uuid")
    results = MongoStore(db, settings.results_collection, uri=uri, key="uuid")
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


def describe_store(store: JobStore) -> str:
    """Where results go, with any password hidden."""
    results = store.additional_stores.get(RESULTS, store.docs_store)
    if isinstance(results, MontyStore):
        return f"embedded MontyDB at {results.database_path} (database {results.database_name})"
    return redact_uri(f"MongoDB {getattr(results, 'uri', None) or results.name}")


def ensure_indexes(store: Store) -> None:
    """Index the fields users query on (no-op for MontyDB, which has no indexes)."""
    for field in INDEXED_FIELDS:
        store.ensure_index(field)


def write_results(store: JobStore, documents: list[dict[str, Any]]) -> None:
    """Write flat result documents in bulk (one call), upserting by ``uuid``."""
    results = store.additional_stores.get(RESULTS)
    if results is None or not documents:
        return
    try:
        results.update(documents, key="uuid")
    except Exception as exc:
        raise StoreConfigError(redact_uri(f"writing {len(documents)} results failed: {exc}")) from exc
