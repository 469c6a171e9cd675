"""Benchmark reproductions: read the user's data path, run the model, write tables and plots."""

from __future__ import annotations

from typing import Any

NOT_RUN = "not run"


def stored_error(doc: dict[str, Any] | None) -> str | None:
    """Why a benchmark row has no MLIP value (not run, or the stored failure); None if it succeeded."""
    if doc is None:
        return NOT_RUN
    if doc["state"] != "successful":
        return doc.get("error") or "failed"
    return None


def stored_state(doc: dict[str, Any] | None) -> str:
    """ "successful", "failed", "unphysical" or "not run" (a benchmark row's outcome)."""
    return NOT_RUN if doc is None else str(doc.get("state", "failed"))


def state_counts(states: Any) -> dict[str, int]:
    """How many rows failed, were unphysical (excluded from every metric) or were not run."""
    values = list(states)
    return {
        "n_failed": sum(s == "failed" for s in values),
        "n_unphysical_excluded": sum(s == "unphysical" for s in values),
        "n_not_run": sum(s == NOT_RUN for s in values),
    }
