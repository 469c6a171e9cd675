"""A process-wide progress hook: jobs report, the CLI (or nobody) listens."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def advance(self, finished: int, steps: int) -> None:
        """``finished`` structures completed and ``steps`` batched steps taken since last call."""

    def chunk_done(self) -> None:
        """One chunk job finished."""

    def task(self, label: str, advance: int, total: int) -> None:
        """Progress of a named piece of work (supercells, hull plots, ...): ``advance`` of ``total``."""

    def stage(self, label: str, n_selected: int, n_chunks: int) -> None:
        """A campaign stage expanded into ``n_chunks`` chunk jobs over ``n_selected`` candidates."""


_REPORTER: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    global _REPORTER
    _REPORTER = reporter


def report(finished: int, steps: int) -> None:
    if _REPORTER is not None:
        _REPORTER.advance(finished, steps)


def report_chunk() -> None:
    if _REPORTER is not None:
        _REPORTER.chunk_done()


def report_task(label: str, advance: int, total: int) -> None:
    """Advance the bar named ``label`` (created at the first call with its ``total``)."""
    if _REPORTER is not None and hasattr(_REPORTER, "task"):
        _REPORTER.task(label, advance, total)


def report_stage(label: str, n_selected: int, n_chunks: int) -> None:
    """A funnel stage starts: later structures and chunks count towards it, not the relax bar."""
    if _REPORTER is not None and hasattr(_REPORTER, "stage"):
        _REPORTER.stage(label, n_selected, n_chunks)


_TIMINGS: dict[str, float] = {}


def add_time(category: str, seconds: float) -> None:
    """Accumulate wall time per category ("engine", "results_store", ...) in this process."""
    _TIMINGS[category] = _TIMINGS.get(category, 0.0) + seconds


def timings() -> dict[str, float]:
    """Seconds accumulated per category since the last :func:`reset_timings`."""
    return dict(_TIMINGS)


def reset_timings() -> None:
    _TIMINGS.clear()
