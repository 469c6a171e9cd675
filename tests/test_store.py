from __future__ import annotations

import pytest

from mlipflows.errors import StoreConfigError
from mlipflows.store import (
    BulkMontyStore,
    describe_store,
    get_job_store,
    load_store_settings,
    redact_uri,
)


def test_embedded_default_lives_under_home(isolated_home):
    store = get_job_store()
    assert isinstance(store.docs_store, BulkMontyStore)
    assert set(store.additional_stores) == {"data", "results"}
    assert str(isolated_home) in describe_store(store)


def test_bulk_update_inserts_then_replaces(isolated_home):
    store = BulkMontyStore("things", database_path=str(isolated_home), key="uuid")
    store.connect()
    store.update([{"uuid": str(i), "v": i} for i in range(500)])
    assert store.count() == 500
    store.update([{"uuid": "3", "v": -3}, {"uuid": "new", "v": 0}, {"uuid": "new", "v": 1}])
    assert store.count() == 501
    assert store.query_one({"uuid": "3"})["v"] == -3
    assert store.query_one({"uuid": "new"})["v"] == 1
    store.update([{"uuid": "a", "index": 1}, {"uuid": "a", "index": 2}], key=["uuid", "index"])
    assert store.count({"uuid": "a"}) == 2


def test_uri_from_env_and_yaml(tmp_path, monkeypatch):
    cfg = tmp_path / "mlipflows.yaml"
    cfg.write_text("store:\n  uri: mongodb://alice:s3cret@db.example:27017\n  database: screening\n")
    s = load_store_settings(config=cfg)
    assert s.uri.startswith("mongodb://") and s.database == "screening"
    monkeypatch.setenv("MLIPFLOWS_STORE_URI", "mongodb://bob:pw@other:27017")
    assert load_store_settings(config=cfg).uri == "mongodb://bob:pw@other:27017"
    assert load_store_settings(uri="mongodb://x:27017").uri == "mongodb://x:27017"


def test_bad_config_is_reported_without_password(tmp_path):
    cfg = tmp_path / "mlipflows.yaml"
    cfg.write_text("store:\n  uri: mongodb://alice:s3cret@db.example:27017\n  data_backend: s3\n")
    with pytest.raises(StoreConfigError) as err:
        load_store_settings(config=cfg)
    assert "s3cret" not in str(err.value)


def test_redact_uri():
    text = "failed on mongodb://alice:s3cret@h:1/db and mongodb+srv://bob:p%40ss@c.net/x"
    out = redact_uri(text)
    assert "s3cret" not in out and "p%40ss" not in out
    assert "alice:****@h:1" in out and "bob:****@c.net" in out
    assert redact_uri("mongodb://localhost:27017") == "mongodb://localhost:27017"


def test_bulk_update_across_instances_and_removals(isolated_home):
    first = BulkMontyStore("shared", database_path=str(isolated_home), key="uuid")
    first.connect()
    first.update([{"uuid": str(i), "v": i} for i in range(10)])
    second = BulkMontyStore("shared", database_path=str(isolated_home), key="uuid")
    second.connect()  # reads the keys the first instance wrote: replaces, never duplicates
    second.update([{"uuid": "3", "v": 30}, {"uuid": "10", "v": 10}])
    assert second.count() == 11 and second.query_one({"uuid": "3"})["v"] == 30
    second.remove_docs({"uuid": "3"})
    second.update([{"uuid": "3", "v": 3}])  # known keys are re-read after a removal
    assert second.count({"uuid": "3"}) == 1


def test_a_worker_with_another_embedded_store_is_refused(tmp_path, monkeypatch):
    """A firework submitted against an embedded store must not complete into another folder's."""
    from monty.json import MontyDecoder

    from mlipflows.store import ConfiguredJobStore

    monkeypatch.setenv("MLIPFLOWS_HOME", str(tmp_path / "submitter"))
    reference = ConfiguredJobStore.reference(get_job_store()).as_dict()
    monkeypatch.setenv("MLIPFLOWS_HOME", str(tmp_path / "elsewhere"))
    with pytest.raises(StoreConfigError) as err:
        MontyDecoder().process_decoded(reference).connect()
    assert str(tmp_path / "submitter") in str(err.value) and str(tmp_path / "elsewhere") in str(err.value)
    monkeypatch.setenv("MLIPFLOWS_HOME", str(tmp_path / "submitter"))  # a worker on the same machine
    MontyDecoder().process_decoded(reference).connect()
