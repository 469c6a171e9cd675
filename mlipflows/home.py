"""Where mlipflows keeps its files: the embedded store, the config and the caches.

Its own module so that the engine and the phonon code find their caches without importing
the workflow stack (jobflow, maggma) that :mod:`mlipflows.store` needs.
"""

from __future__ import annotations

import os
from pathlib import Path


def mlipflows_home() -> Path:
    """``$MLIPFLOWS_HOME``, by default ``~/.mlipflows``."""
    return Path(os.environ.get("MLIPFLOWS_HOME", "~/.mlipflows")).expanduser()
