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
