"""A process-wide progress hook: jobs report, the CLI (or nobody) listens."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def advance(self, finished: int, steps: int) -> None:
        """``finished`` structures completed and ``steps`` batched steps taken since last call."""

    def chunk_done(self) -> None:
        """One chunk job finished."""


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
