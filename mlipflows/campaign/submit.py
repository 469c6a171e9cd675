"""Submit a campaign to FireWorks: campaign flow → ``flow_to_workflow`` → LaunchPad.

Workers are plain ``rlaunch rapidfire`` / ``qlaunch`` processes. Every firework carries a
:class:`~mlipflows.store.ConfiguredJobStore` reference, so each worker writes to the store its
own ``mlipflows.yaml`` (or ``$MLIPFLOWS_STORE_URI``) names, and no password reaches the
LaunchPad. A worker runs many fireworks in one process, so ``load_potential``'s per-process
cache loads each model once per worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobflow import JobStore

from mlipflows.campaign.funnel import record_planned_stages
from mlipflows.campaign.run import CampaignPlan, plan_campaign
from mlipflows.campaign.spec import CampaignSpec
from mlipflows.errors import StoreConfigError
from mlipflows.store import ConfiguredJobStore, ensure_indexes, redact_uri, store_errors

if TYPE_CHECKING:
    from fireworks import LaunchPad

# Workflow states after which a campaign's workflow no longer runs anything.
DONE_STATES = ("COMPLETED", "FIZZLED", "DEFUSED", "ARCHIVED")


class CampaignBusyError(StoreConfigError):
    """The campaign already has a workflow on the LaunchPad that has not finished."""


@dataclass
class Submission:
    """What was submitted: the plan and the FireWorks ids of the new workflow's fireworks."""

    plan: CampaignPlan
    fw_ids: list[int]


def load_launchpad(path: str | Path) -> LaunchPad:
    """A FireWorks ``LaunchPad`` from ``my_launchpad.yaml``; errors never show its password."""
    from fireworks import LaunchPad

    path = Path(path)
    if not path.is_file():
        raise StoreConfigError(f"{path}: no such LaunchPad file (see workflows/my_launchpad.yaml)")
    try:
        return LaunchPad.from_file(str(path))
    except Exception as exc:
        raise StoreConfigError(redact_uri(f"{path}: cannot open the LaunchPad ({exc})")) from None


def launchpad_location(lp: LaunchPad) -> str:
    """``mongodb://user:****@host:port/... (database fireworks)`` for messages."""
    where = lp.host if lp.uri_mode else f"mongodb://{lp.host}:{lp.port}"
    return redact_uri(f"LaunchPad {where} (database {lp.name})")


def unfinished_workflows(lp: LaunchPad, campaign: str) -> int:
    """Workflows of ``campaign`` on ``lp`` still running or waiting to run."""
    return lp.workflows.count_documents({"metadata.campaign": campaign, "state": {"$nin": list(DONE_STATES)}})


def submit_campaign(
    spec: CampaignSpec,
    store: JobStore,
    lp: LaunchPad,
    worker_config: str | None = None,
    retry_failed: bool = False,
    force: bool = False,
) -> Submission:
    """Plan the campaign against ``store`` (skipping stored structures) and add it to ``lp``.

    Args:
        spec: the campaign.
        store: the submitter's store (same database the workers must write to).
        lp: the LaunchPad.
        worker_config: path of ``mlipflows.yaml`` *as seen by the workers*; None = each worker
            searches ``$MLIPFLOWS_CONFIG``, ./mlipflows.yaml, ``$MLIPFLOWS_HOME/mlipflows.yaml``
            and ``$MLIPFLOWS_STORE_URI``.
        retry_failed: relax again candidates stored as failed.
        force: submit even when an unfinished workflow of this campaign is on the LaunchPad
            (its structures would be relaxed twice; results are still stored once).
    """
    from jobflow.managers.fireworks import flow_to_workflow

    with store_errors(launchpad_location(lp), "reading the LaunchPad"):
        busy = unfinished_workflows(lp, spec.name)
    if busy and not force:
        raise CampaignBusyError(
            f"campaign {spec.name!r} has {busy} unfinished workflow(s) on {launchpad_location(lp)}; "
            "let the workers finish (or `lpad detect_lostruns --rerun` for dead ones), or pass --force"
        )
    ensure_indexes(store)
    plan = plan_campaign(spec, store, retry_failed)
    reference = ConfiguredJobStore.reference(store, worker_config)
    wf = flow_to_workflow(
        plan.flow,
        store=reference,
        name=f"campaign {spec.name}",
        metadata={"campaign": spec.name, "model": spec.model},
    )
    with store_errors(launchpad_location(lp), "adding the workflow to the LaunchPad"):
        try:
            id_map = lp.add_wf(wf)
        except ValueError as exc:
            if "next FW id" not in str(exc):
                raise
            # a LaunchPad database that `lpad reset` never initialised
            raise StoreConfigError(
                f"the LaunchPad at {launchpad_location(lp)} is not initialised: run "
                "`lpad -l my_launchpad.yaml reset` once (it empties that FireWorks database)"
            ) from None
    with store_errors(store, "recording the campaign's stages"):
        record_planned_stages(store, spec, plan.digests)
    return Submission(plan, sorted(id_map.values()))
