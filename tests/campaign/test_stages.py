"""Every stage kind's Maker survives the FireWorks round trip (nested settings stay objects)."""

from __future__ import annotations

import json

import pytest
from fireworks import Firework
from jobflow.managers.fireworks import job_to_firework
from pymatgen.core import Lattice, Structure

from mlipflows.campaign.stages import STAGE_KINDS, Selected, stage_class
from mlipflows.makers.base import ChunkSettings

SETTINGS = {"second_opinion": {"model": "morse"}}


@pytest.mark.parametrize("kind", sorted(STAGE_KINDS))
def test_stage_jobs_round_trip_through_a_firework(kind):
    stage = stage_class(kind)(SETTINGS.get(kind, {}))
    cu = Structure(Lattice.cubic(3.6), ["Cu"] * 4, [[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    chunk = ChunkSettings(model="morse", campaign="c", stage="s", settings_digest="d")
    selected = [Selected("cu", cu, {"hull.formation_energy_per_atom": 0.0})]
    jobs = stage.jobs(selected, chunk, 4)
    assert len(jobs) == 1
    fw = Firework.from_dict(json.loads(json.dumps(job_to_firework(jobs[0]).to_dict(), default=str)))
    job = fw.tasks[0]["job"]
    if hasattr(job.function, "__self__"):  # a Maker's make: the Maker comes back equal
        assert job.function.__self__ == jobs[0].function.__self__
    else:  # a plain job taking the Maker as an argument (polymorphs)
        assert job.function_args[0] == jobs[0].function_args[0]


@pytest.mark.parametrize(
    ("before", "after", "passes"),
    [
        (1, 227, True),
        (2, 225, True),
        (225, 225, True),
        (227, 166, False),
        (225, 221, False),
        (186, 216, False),
    ],
)
def test_phonon_gate_stops_symmetry_loss_not_gain(before, after, passes):
    from mlipflows.campaign.stages import phonon_gate

    setup = {"spacegroup_before": before, "spacegroup_after": after, "symmetry_changed": before != after}
    reason = phonon_gate({"has_imaginary_modes": False, "setup": setup})
    assert (reason is None) == passes, reason
    assert phonon_gate({"has_imaginary_modes": True, "setup": setup}) == "imaginary modes"
