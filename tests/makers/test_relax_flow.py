"""Chunked jobs through jobflow, stored results, and bad input that never sinks a campaign."""

from __future__ import annotations

import pytest
from jobflow import run_locally
from pymatgen.core import Lattice, Structure

from mlipflows.engine import RelaxSettings
from mlipflows.makers import RelaxMaker, StaticMaker, relax_flow
from mlipflows.makers.base import ChunkSettings
from mlipflows.results import build_criteria, query_results
from mlipflows.store import get_job_store


def _run(flow):
    store = get_job_store()
    run_locally(flow, store=store, log=False, ensure_success=True)
    return store


def _fcc(el: str, a: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [el], [[0, 0, 0]])


def test_relax_flow_chunks_and_stores_one_doc_per_structure(structures):
    ids = [f"s{k}" for k in range(len(structures))]
    maker = RelaxMaker(
        chunk=ChunkSettings(model="morse", tags=["unit"], campaign="c1"), relax=RelaxSettings(fmax=0.02)
    )
    flow = relax_flow(structures, ids, chunk_size=3, maker=maker)
    assert len(flow.jobs) == 3
    store = _run(flow)
    frame = query_results(store, build_criteria(campaign="c1"))
    assert sorted(frame["structure_id"]) == sorted(ids)
    assert (frame["state"] == "successful").all() and frame["converged"].all()
    assert (frame["max_force"] < 0.02).all()
    assert "forces" not in frame  # bulky arrays stay out of the flat collection
    assert {"model.name", "model.checksum", "chemsys", "formula_reduced", "timings.wall_s"} <= set(frame)
    # full documents, with forces and trajectory resolved from the data store
    store.connect()
    docs = store.get_output(flow.jobs[0].uuid, load=True)
    assert len(docs[0]["forces"]) == docs[0]["nsites"]
    assert len(docs[0]["trajectory"]) == docs[0]["n_steps"] + 1


def test_rerun_replaces_instead_of_duplicating(structures):
    maker = RelaxMaker(chunk=ChunkSettings(model="morse", campaign="again"))
    for _ in range(2):
        store = _run(relax_flow(structures[:2], ["a", "b"], maker=maker))
    assert len(query_results(store, build_criteria(campaign="again"))) == 2


def test_bad_neighbours_do_not_sink_good_structures(structures):
    overlapping = structures[0].copy()
    overlapping.append("Si", overlapping.cart_coords[0] + [0.1, 0, 0], coords_are_cartesian=True)
    batch = [structures[1], _fcc("Xe", 6.2), overlapping, _fcc("Kr", 5.8), structures[2]]
    ids = ["good1", "xenon", "overlap", "krypton", "good2"]

    store = _run(
        relax_flow(batch, ids, maker=RelaxMaker(chunk=ChunkSettings(model="tests.helpers:morse_no_xe")))
    )
    rows = query_results(store).set_index("structure_id")
    assert rows.loc["xenon", "error"] == "element Xe not supported by morse-no-xe"
    assert "Å apart" in rows.loc["overlap", "error"]
    for good in ("good1", "good2", "krypton"):
        assert rows.loc[good, "state"] == "successful"

    store = _run(
        relax_flow(
            batch,
            [f"n-{i}" for i in ids],
            maker=RelaxMaker(chunk=ChunkSettings(model="tests.helpers:nan_for_kr")),
        )
    )
    rows = query_results(store, {"model.name": "nan-for-kr"}).set_index("structure_id")
    assert "non-finite" in rows.loc["n-krypton", "error"]
    assert rows.loc["n-good1", "state"] == "successful" and rows.loc["n-xenon", "state"] == "successful"


def test_model_exception_is_isolated_to_its_structure(structures):
    batch = [structures[1], _fcc("Ar", 5.3), structures[2]]
    store = _run(
        relax_flow(
            batch,
            ["x", "argon", "y"],
            maker=RelaxMaker(chunk=ChunkSettings(model="tests.helpers:raises_for_ar")),
        )
    )
    rows = query_results(store).set_index("structure_id")
    assert "simulated model failure on Ar" in rows.loc["argon", "error"]
    assert (rows.loc[["x", "y"], "state"] == "successful").all()


def test_not_converged_is_stored_as_such(structures):
    maker = RelaxMaker(chunk=ChunkSettings(model="morse"), relax=RelaxSettings(fmax=1e-7, max_steps=3))
    store = _run(relax_flow(structures[:1], ["slow"], maker=maker))
    row = query_results(store).iloc[0]
    assert row["state"] == "successful" and not row["converged"] and row["n_steps"] == 3


def test_static_maker(structures):
    job = StaticMaker(chunk=ChunkSettings(model="morse", tags=["sp"])).make(structures[:3])
    store = _run(job)
    frame = query_results(store, build_criteria(tag="sp"))
    assert len(frame) == 3 and (frame["task_type"] == "static").all()
    assert frame["pressure"].notna().all()


def test_relax_flow_validates_chunk_size(structures):
    with pytest.raises(ValueError, match="chunk_size"):
        relax_flow(structures, chunk_size=0)
