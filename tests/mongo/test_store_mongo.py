"""Store round trips over a real MongoDB-protocol TCP connection (SecantusDB)."""

from __future__ import annotations

import json

import pytest
from jobflow import job, run_locally

from mlipflows.schemas import INDEXED_FIELDS
from mlipflows.store import (
    COMPOUND_INDEXES,
    RESULTS,
    StoreUnavailableError,
    connect_store,
    describe_store,
    ensure_indexes,
    get_job_store,
    write_results,
)
from tests.mongo.server import PASSWORD


def _docs(n: int, campaign: str = "c1") -> list[dict]:
    return [
        {
            "uuid": f"u{i}",
            "structure_id": f"s{i}",
            "campaign": campaign,
            "task_type": "stability",
            "model": {"name": "morse"},
            "chemsys": "O-Sr-Ti" if i % 2 else "Ba-O",
            "formula_reduced": "SrTiO3" if i % 2 else "BaO",
            "e_above_hull": 0.01 * i,
        }
        for i in range(n)
    ]


@job(data=["forces"])
def _make_output(n: int) -> dict:
    return {"n": n, "forces": [[0.1 * i, 0.0, -0.1 * i] for i in range(n)]}


def test_round_trip_indexes_and_data_store(mongo_uri):
    store = connect_store(get_job_store(mongo_uri))
    assert PASSWORD not in describe_store(store) and "****" in describe_store(store)
    database = mongo_uri.split("/")[3].split("?")[0]
    assert f"database {database}" in describe_store(store)

    fields = ensure_indexes(store)
    assert "e_above_hull" in fields and set(INDEXED_FIELDS) <= set(fields)
    results = store.additional_stores[RESULTS]
    info = results._collection.index_information()
    keys = {spec["key"][0][0]: spec for spec in info.values()}
    for field in ("campaign", "model.name", "chemsys", "formula_reduced", "e_above_hull"):
        assert field in keys, f"{field} not indexed: {sorted(keys)}"
    assert keys["uuid"].get("unique") is True
    compound = {tuple(k for k, _ in spec["key"]) for spec in info.values() if len(spec["key"]) > 1}
    assert set(COMPOUND_INDEXES) <= compound
    explain = results._collection.find({"campaign": "c1", "chemsys": "Ba-O"}).sort("e_above_hull").explain()
    assert "IXSCAN" in json.dumps(explain["queryPlanner"]["winningPlan"])  # not a collection scan

    write_results(store, _docs(40))
    write_results(store, _docs(40))  # a rerun replaces by uuid: still 40
    assert results.count({"campaign": "c1"}) == 40
    hits = list(results.query({"chemsys": "Ba-O", "e_above_hull": {"$lt": 0.1}}))
    assert sorted(d["structure_id"] for d in hits) == ["s0", "s2", "s4", "s6", "s8"]

    # jobflow through the same JobStore: outputs in `jobs`, big arrays in the GridFS data store
    flow_job = _make_output(5)
    run_locally(flow_job, store=store, log=False, ensure_success=True)
    out = store.get_output(flow_job.uuid, load=True)
    assert out["forces"][4] == pytest.approx([0.4, 0.0, -0.4])
    raw = store.query_one({"uuid": flow_job.uuid}, load=False)
    assert "blob_uuid" in raw["output"]["forces"]  # a reference, the array lives in GridFS
    store.close()


def test_unreachable_server_error_names_uri_without_password(mongo_server):
    uri = mongo_server.uri("nowhere").replace(str(mongo_server.port), "1")  # nothing listens on :1
    store = get_job_store(uri)
    store.additional_stores[RESULTS].mongoclient_kwargs["serverSelectionTimeoutMS"] = 300
    store.connect()  # lazy: pymongo only notices the dead server at the first operation
    with pytest.raises(StoreUnavailableError) as err:
        write_results(store, _docs(3))
    msg = str(err.value)
    assert PASSWORD not in msg
    assert "screener:****@127.0.0.1:1" in msg and "did not answer" in msg


def test_fireworks_store_reference_holds_no_secret_and_resolves_on_the_worker(mongo_uri, monkeypatch):
    from monty.json import MontyDecoder

    from mlipflows.errors import StoreConfigError
    from mlipflows.store import ConfiguredJobStore

    submitted = get_job_store(mongo_uri)
    reference = ConfiguredJobStore.reference(submitted).as_dict()
    assert PASSWORD not in json.dumps(reference) and "127.0.0.1" not in json.dumps(reference)

    # a worker without configuration would write to a local embedded store: refused, with the fix
    lonely = MontyDecoder().process_decoded(reference)
    with pytest.raises(StoreConfigError, match="MLIPFLOWS_CONFIG"):
        lonely.connect()

    monkeypatch.setenv("MLIPFLOWS_STORE_URI", mongo_uri)  # a configured worker
    worker = MontyDecoder().process_decoded(reference)
    worker.connect()
    write_results(worker, _docs(2))
    connect_store(submitted)
    assert submitted.additional_stores[RESULTS].count({"campaign": "c1"}) == 2


def test_duplicate_uuids_already_stored_are_reported(mongo_uri, caplog):
    store = connect_store(get_job_store(mongo_uri))
    store.additional_stores[RESULTS]._collection.insert_many([{"uuid": "same"}, {"uuid": "same"}])
    ensure_indexes(store)
    assert "not a unique index" in caplog.text and PASSWORD not in caplog.text


def test_worker_config_path_travels_with_the_reference(mongo_uri, tmp_path):
    from monty.json import MontyDecoder

    from mlipflows.store import ConfiguredJobStore

    config = tmp_path / "worker-mlipflows.yaml"
    config.write_text(f"store:\n  uri: {mongo_uri}\n")
    reference = ConfiguredJobStore.reference(get_job_store(mongo_uri), config=str(config)).as_dict()
    assert reference["config"] == str(config) and PASSWORD not in json.dumps(reference)
    worker = MontyDecoder().process_decoded(reference)  # no environment: the path decides
    worker.connect()
    write_results(worker, _docs(1))
    assert worker.additional_stores[RESULTS].count() == 1


def test_training_data_read_from_a_mongodb_store(mongo_uri, structures):
    from mlipflows.makers import StaticMaker, relax_flow
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.training.store_data import StoreQuery, read_store

    store = get_job_store(mongo_uri)
    ids = [f"t{k}" for k in range(4)]
    maker = StaticMaker(chunk=ChunkSettings(model="morse", campaign="mongo-labels"))
    run_locally(relax_flow(structures[:4], ids, chunk_size=2, maker=maker), store=store, log=False)
    samples = read_store(StoreQuery(campaign="mongo-labels"), store=store)
    assert len(samples) == 4
    assert all(s.forces.shape == (len(s.atoms), 3) and s.stress.shape == (3, 3) for s in samples)
    assert max(abs(s.forces).max() for s in samples) > 0.01  # forces came back from GridFS
    store.close()
