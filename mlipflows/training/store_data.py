"""Training samples from our own results store: energies, forces and stresses of stored
static and relax results (e.g. a large model's labels on a campaign's chemistry, to distil into
a small, fast model of ours).

The flat ``results`` collection says *which* results match (campaign, model, chemsys, ...)
and which job wrote them; the forces live with that job's output in the data store, so the
matching jobs' outputs are loaded (blobs resolved) and the documents picked out of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.errors import DataNotFoundError
from mlipflows.potentials.base import EV_PER_A3_TO_GPA
from mlipflows.training.data import Sample


class StoreQuery(BaseModel):
    """Which stored results become training data (all filters combine; see
    :func:`mlipflows.results.find_results`).

    The store is the configured one (``mlipflows.yaml`` / ``$MLIPFLOWS_STORE_URI``) or the one
    ``config`` points to: never a URI in the training YAML, because the YAML is saved inside
    every checkpoint it produces.
    """

    model_config = ConfigDict(extra="forbid")

    campaign: str | None = None
    model: str | None = Field(None, description="name of the model whose results are the labels")
    task_type: Literal["static", "relax"] | None = Field(None, description="default: both")
    tag: str | None = None
    chemsys: str | None = None
    where: str | None = Field(None, description='e.g. "nsites <= 16"')
    config: Path | None = Field(None, description="an mlipflows.yaml naming the store")


def read_store(
    query: StoreQuery, head: str = "default", weight: float = 1.0, store: Any = None
) -> list[Sample]:
    """Samples (structure, energy eV, forces eV/Å, stress eV/Å³ in ASE sign) of every
    successful static/relax result matching ``query``, in the store's result order.

    A relax result is labelled at its final geometry. ``store``: an open JobStore to read
    instead of the configured one.
    """
    from mlipflows.results import find_results
    from mlipflows.selection import QueryError
    from mlipflows.store import get_job_store, store_errors

    store = store or get_job_store(config=query.config)
    try:
        rows = find_results(
            store,
            campaign=query.campaign,
            model=query.model,
            task_type=query.task_type,
            state="successful",
            tag=query.tag,
            chemsys=query.chemsys,
            where=query.where,
            exclude=("structure",),
        )
    except QueryError as exc:  # a misspelt field or task type: no data, with the nearest names
        raise DataNotFoundError(
            f"no stored results for {query.model_dump(exclude_none=True)}: {exc}"
        ) from None
    if query.task_type is None and len(rows):
        rows = rows[rows["task_type"].isin(["static", "relax"])]
    if not len(rows) or "job_uuid" not in rows:
        raise DataNotFoundError(
            f"no stored static or relax results match {query.model_dump(exclude_none=True)} "
            "(`mlipflows campaign list` and `mlipflows results --campaign C` show what is stored; "
            "`mlipflows distill --label` labels a base pool with the teacher first)"
        )
    wanted = {(r.job_uuid, r.structure_id, r.task_type) for r in rows.itertuples()}
    with store_errors(store, "reading training data"):
        store.connect()
        outputs = _latest_outputs(store, {uuid for uuid, _, _ in wanted})
    samples = []
    for uuid, structure_id, task_type in _in_order(rows):
        doc = outputs.get(uuid, {}).get((structure_id, task_type))
        if doc is None or doc.get("forces") is None:
            raise DataNotFoundError(
                f"result {structure_id} ({task_type}) of job {uuid} is in the results collection but "
                "its job output (with the forces) is not in this store's jobs and data collections"
            )
        samples.append(_sample(doc, head, weight))
    return samples


def _in_order(rows: Any) -> Iterable[tuple[str, str, str]]:
    seen = set()
    for r in rows.itertuples():
        key = (r.job_uuid, r.structure_id, r.task_type)
        if key not in seen:
            seen.add(key)
            yield key


def _latest_outputs(store: Any, uuids: set[str]) -> dict[str, dict[tuple[str, str], dict]]:
    """Per job uuid, its documents keyed by (structure_id, task_type), from the newest run."""
    newest: dict[str, tuple[int, Any]] = {}
    found = _query_loaded(store, {"uuid": {"$in": sorted(uuids)}}, ["uuid", "index", "output"])
    for entry in found:
        index = int(entry.get("index", 1))
        if entry["uuid"] not in newest or index > newest[entry["uuid"]][0]:
            newest[entry["uuid"]] = (index, entry.get("output"))
    by_job = {}
    for uuid, (_, output) in newest.items():
        docs = output if isinstance(output, list) else [output]
        by_job[uuid] = {
            (d.get("structure_id"), d.get("task_type")): d
            for d in docs
            if isinstance(d, dict) and "structure_id" in d
        }
    return by_job


def _query_loaded(store: Any, criteria: dict, properties: list[str]) -> list[dict]:
    """``store.query(criteria, properties, load=True)`` with each additional store read once.

    jobflow resolves blobs one job document at a time, each with its own ``$in`` query; on the
    index-less embedded store such a query costs (documents × uuids) Python comparisons, so
    reading a 15,000-label pool took over 20 minutes. Here each additional store is read once.
    """
    from jobflow.utils.find import find_key, update_in_dictionary
    from pydash import get  # as jobflow's own JobStore.query

    docs = list(store.docs_store.query(criteria=criteria, properties=properties))
    wanted: dict[str, list[tuple[dict, tuple, str]]] = {}
    for doc in docs:
        for location in find_key(doc, "blob_uuid"):
            blob = get(doc, list(location))
            wanted.setdefault(blob["store"], []).append((doc, tuple(location), blob["blob_uuid"]))
    for name, refs in wanted.items():
        data = _blobs(store.additional_stores[name], {uuid for _, _, uuid in refs})
        for doc, location, uuid in refs:
            update_in_dictionary(doc, {location: data[uuid]})
    return docs


def _blobs(store: Any, uuids: set[str]) -> dict[str, Any]:
    """``{blob_uuid: data}`` of ``uuids``: by ``$in`` on a server (indexed), by one filtered scan
    on the embedded MontyDB store (whose ``$in`` compares every value with every document)."""
    from maggma.stores import MontyStore

    if isinstance(store, MontyStore):
        found = (o for o in store.query(properties=["blob_uuid", "data"]) if o.get("blob_uuid") in uuids)
    else:
        found = store.query(criteria={"blob_uuid": {"$in": sorted(uuids)}}, properties=["blob_uuid", "data"])
    return {o["blob_uuid"]: o["data"] for o in found}


def _sample(doc: dict, head: str, weight: float) -> Sample:
    atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(doc["structure"]))
    stress = doc.get("stress")
    return Sample(
        atoms=atoms,
        energy=float(doc["energy"]),
        forces=np.asarray(doc["forces"], dtype=float),
        stress=None if stress is None else np.asarray(stress, dtype=float) / EV_PER_A3_TO_GPA,
        head=head,
        weight=weight,
        tag=str(doc.get("campaign") or ""),
    )


def stage_samples(store: Any, campaign: str, stages: dict[str, str], head: str) -> list[Sample]:
    """Samples of every successful static/relax result of a campaign's ``stages``
    (``{stage: settings digest}``), each tagged with its structure id (for grouped splits)."""
    from mlipflows.store import store_errors

    results = store.additional_stores["results"]
    with store_errors(store, "reading training data"):
        results.connect()
        rows = []
        for stage, digest in stages.items():
            crit = {
                "campaign": campaign,
                "stage": stage,
                "settings_digest": digest,
                "state": "successful",
                "task_type": {"$in": ["static", "relax"]},
            }
            rows += list(results.query(crit, properties=["job_uuid", "structure_id", "task_type"]))
        store.connect()
        outputs = _latest_outputs(store, {r["job_uuid"] for r in rows})
    samples = []
    for r in rows:
        doc = outputs.get(r["job_uuid"], {}).get((r["structure_id"], r["task_type"]))
        if doc is not None and doc.get("forces") is not None:
            samples.append(replace(_sample(doc, head, 1.0), tag=r["structure_id"]))
    return samples
