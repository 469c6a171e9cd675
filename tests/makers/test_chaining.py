"""Makers chain as atomate2's do: a job takes an upstream job's output (its documents)."""

from __future__ import annotations

import pytest
from jobflow import Flow, job, run_locally
from pymatgen.core import Lattice, Structure

from mlipflows.makers import RelaxMaker, StaticMaker
from mlipflows.makers.base import ChunkSettings
from mlipflows.store import get_job_store


def _cu(a: float = 3.7) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), ["Cu"], [[0, 0, 0]])


@job
def energies(docs: list) -> list[float]:
    return [d.energy_per_atom for d in docs]


def test_a_static_job_takes_a_relax_jobs_documents_and_a_plain_job_reads_them():
    chunk = ChunkSettings(model="morse", campaign="chain")
    relax = RelaxMaker(chunk=chunk).make([_cu(), _cu(3.5)], ["cu-a", "cu-b"])
    static = StaticMaker(chunk=chunk).make(relax.output)  # ids come with the documents
    single = StaticMaker(chunk=chunk).make(relax.output[0].structure, "cu-a-again")  # one structure
    read = energies(relax.output)
    store = get_job_store()
    responses = run_locally(Flow([relax, static, single, read]), store=store, ensure_success=True)
    relaxed = responses[relax.uuid][1].output
    statics = responses[static.uuid][1].output
    assert [d.structure_id for d in statics] == ["cu-a", "cu-b"]
    for r, s in zip(relaxed, statics, strict=True):  # the static of a relaxed structure: its energy
        assert s.energy_per_atom == pytest.approx(r.energy_per_atom, abs=1e-6)
    assert responses[single.uuid][1].output[0].structure_id == "cu-a-again"
    assert responses[read.uuid][1].output == pytest.approx([d.energy_per_atom for d in relaxed])


def test_a_wrong_input_says_what_to_pass():
    with pytest.raises(TypeError, match="pass pymatgen Structures"):
        StaticMaker(chunk=ChunkSettings(model="morse")).run(["Cu.cif"])
