"""Forces of displaced supercells kept on disk until their material is done.

A κ material of low symmetry has over a thousand fc3 supercells (a wurtzite: 1,254 of 72
atoms, most of an hour of CPU forces). Without this, a run stopped by a wall-time limit or a
kill redoes all of them; with it, the rerun evaluates only the supercells it never finished.

An entry is reused only for the same model (checksum, dtype, device type) and a bit-identical
supercell (species, lattice and positions as float64 bytes): a rerun that relaxes to a
slightly different structure misses the cache and computes, it never mixes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from mlipflows.home import mlipflows_home
from mlipflows.potentials import Potential

log = logging.getLogger(__name__)


class ForceCache:
    """One model's supercell forces under ``root`` (default ``$MLIPFLOWS_HOME/cache/supercell-forces``)."""

    def __init__(self, potential: Potential, root: Path | None = None) -> None:
        model = "-".join(
            [
                potential.card.checksum,
                str(potential.dtype).removeprefix("torch."),
                potential.device.type,
            ]
        )
        base = root if root is not None else mlipflows_home() / "cache" / "supercell-forces"
        self.folder = Path(base) / hashlib.sha256(model.encode()).hexdigest()[:24]

    @staticmethod
    def key(structure: Structure) -> str:
        h = hashlib.sha256()
        h.update(np.asarray(structure.atomic_numbers, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(structure.lattice.matrix, dtype=np.float64).tobytes())
        h.update(np.ascontiguousarray(structure.cart_coords, dtype=np.float64).tobytes())
        return h.hexdigest()

    def _path(self, structure: Structure) -> Path:
        return self.folder / f"{self.key(structure)}.npy"

    def get(self, structure: Structure) -> np.ndarray | None:
        """The stored forces (eV/Å) of ``structure``; None when absent or unreadable."""
        path = self._path(structure)
        try:
            forces = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        if forces.shape != (len(structure), 3) or not np.all(np.isfinite(forces)):
            log.debug("ignoring a malformed cached force file %s", path)
            return None
        return forces

    def put(self, structure: Structure, forces: np.ndarray) -> None:
        """Store ``forces``; a full or read-only disk only costs a recomputation after a stop."""
        path = self._path(structure)
        data = np.asarray(forces, dtype=np.float64)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # a name of its own: two runs sharing a home may write the same supercell at once
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
            os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide entries from a shared home's others
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, data, allow_pickle=False)
            os.replace(tmp, path)
        except OSError as exc:
            log.debug("cannot cache supercell forces at %s: %s", path, exc)
            if tmp is not None:  # a half-written file would keep the folder from ever going
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    def discard(self, structures: Iterable[Structure]) -> None:
        """Forget these supercells (their material is finished: its document holds the result)."""
        for s in structures:
            self._path(s).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only when empty: another run's entries stay
            self.folder.rmdir()
