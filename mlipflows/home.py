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


SHARED_DATA = Path("../shared/data")  # the benchmarks' defaults: a checkout beside shared/


def reference_data(path: Path) -> Path:
    """``path``, or where a default ``../shared/data/…`` really is when run from elsewhere.

    A relative path under ``../shared/data`` that does not exist from the current directory
    is looked up under ``$MLIPFLOWS_DATA`` and then beside the source checkout, so the
    benchmark commands work from any directory. A path that exists, or any other path, is
    returned as given (a missing one is then reported by the loader, with ``--data``).
    """
    if path.exists() or path.is_absolute():
        return path
    try:
        rest = path.relative_to(SHARED_DATA)
    except ValueError:
        return path
    roots = [Path(os.environ["MLIPFLOWS_DATA"]).expanduser()] if os.environ.get("MLIPFLOWS_DATA") else []
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for root in roots:
        if (root / rest).exists():
            return root / rest
    return path
