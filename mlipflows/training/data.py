"""Labelled structures for training: readers for extxyz and the mlearn JSON format, collation.

Units on the way in: energies eV, forces eV/Å, stresses eV/Å³ in the ASE sign convention
(tensile positive, σ = (1/V) ∂E/∂ε). mlearn's ``virial_stress`` is VASP's stress in kbar in
VASP's component order (xx, yy, zz, xy, yz, zx) and sign (pressure positive), so it becomes
σ = -0.1 · v / 160.2177 eV/Å³ (the same conversion ASE applies to VASP output).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from ase import Atoms
from ase.io import read
from monty.io import zopen
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from mlipflows.engine.batch import Batch
from mlipflows.errors import DataNotFoundError, StructureReadError
from mlipflows.potentials.base import EV_PER_A3_TO_GPA

if TYPE_CHECKING:
    from mlipflows.training.config import DatasetSpec


@dataclass
class Sample:
    """One labelled structure.

    Attributes:
        atoms: geometry (cell, PBC, numbers, positions in Å).
        energy: total energy, eV.
        forces: (n, 3) eV/Å or None.
        stress: (3, 3) eV/Å³ (ASE sign) or None.
        head: readout head (level of theory) this label belongs to.
        charge: net charge of the structure, e.
        weight: loss weight of this structure (from its dataset).
        tag: free text (e.g. the mlearn group) kept for per-group error tables.
    """

    atoms: Atoms
    energy: float
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None
    head: str = "default"
    charge: float = 0.0
    weight: float = 1.0
    tag: str = ""

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


def _vasp_kbar_to_ase(virial: Sequence[float]) -> np.ndarray:
    xx, yy, zz, xy, yz, zx = virial
    kbar = np.array([[xx, xy, zx], [xy, yy, yz], [zx, yz, zz]], dtype=float)
    return -0.1 * kbar / EV_PER_A3_TO_GPA


def read_mlearn(path: str | Path, head: str = "default", weight: float = 1.0) -> list[Sample]:
    """Samples of an mlearn JSON file (``.json`` or ``.json.gz``: list of docs with ``structure``
    (pymatgen dict) and ``outputs`` {energy, forces, virial_stress})."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such mlearn JSON file (see ../shared/data/mlearn)")
    with zopen(path, "rt") as f:
        docs = json.load(f)
    out = []
    for k, doc in enumerate(docs):
        try:
            atoms = AseAtomsAdaptor.get_atoms(Structure.from_dict(doc["structure"]))
            o = doc["outputs"]
            stress = _vasp_kbar_to_ase(o["virial_stress"]) if o.get("virial_stress") else None
            forces = np.asarray(o["forces"], dtype=float)
        except (KeyError, ValueError, TypeError) as exc:
            raise StructureReadError(f"{path} entry {k}: not an mlearn document ({exc})") from exc
        out.append(Sample(atoms, float(o["energy"]), forces, stress, head, 0.0, weight, doc.get("group", "")))
    return out


def _read_frames(path: Path) -> list[Atoms]:
    """All frames; a ``.gz`` file is decompressed once in memory, because ASE's reader seeks
    back and forth and every seek in a gzip stream decompresses it again from the start (the
    14k-frame replay pool of the shipped student took over 10 minutes that way)."""
    if path.suffix != ".gz":
        return read(path, index=":")
    import gzip
    import io

    with gzip.open(path, "rt") as handle:
        return read(io.StringIO(handle.read()), index=":", format="extxyz")


def read_extxyz(path: str | Path, head: str = "default", weight: float = 1.0) -> list[Sample]:
    """Samples of an extended-XYZ file with energy/forces/stress as ASE writes them
    (``info['charge']`` is read as the net charge when present)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no such extxyz file")
    out = []
    for k, atoms in enumerate(_read_frames(path)):
        try:
            energy = atoms.get_potential_energy()
        except RuntimeError as exc:
            raise StructureReadError(f"{path} frame {k}: no energy label") from exc
        calc = atoms.calc
        forces = calc.results.get("forces") if calc is not None else None
        stress = calc.results.get("stress") if calc is not None else None
        if stress is not None and np.shape(stress) == (6,):
            from ase.stress import voigt_6_to_full_3x3_stress

            stress = voigt_6_to_full_3x3_stress(stress)
        clean = Atoms(atoms.numbers, atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        charge = float(atoms.info.get("charge", 0.0))
        tag = str(atoms.info.get("config_type", ""))
        out.append(Sample(clean, float(energy), forces, stress, head, charge, weight, tag))
    return out


def write_extxyz(samples: Sequence[Sample], path: str | Path) -> Path:
    """Write samples (energy, forces, stress, tag as ``config_type``) as extended XYZ
    (``.gz`` compresses); :func:`read_extxyz` reads them back."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    frames = []
    for s in samples:
        atoms = s.atoms.copy()
        results: dict = {"energy": s.energy}
        if s.forces is not None:
            results["forces"] = np.asarray(s.forces, dtype=float)
        if s.stress is not None:
            results["stress"] = np.asarray(s.stress, dtype=float)
        atoms.calc = SinglePointCalculator(atoms, **results)
        if s.tag:
            atoms.info["config_type"] = s.tag
        frames.append(atoms)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path, frames, format="extxyz")
    return path


def read_dataset(
    path: str | Path, fmt: str = "auto", head: str = "default", weight: float = 1.0
) -> list[Sample]:
    """Read ``path`` as ``mlearn`` JSON or ``extxyz`` (``auto``: by file name)."""
    name = str(path)
    if fmt == "auto":
        fmt = "mlearn" if name.endswith((".json", ".json.gz")) else "extxyz"
    if fmt == "mlearn":
        return read_mlearn(path, head, weight)
    if fmt == "extxyz":
        return read_extxyz(path, head, weight)
    raise ValueError(f"unknown dataset format {fmt!r}; use mlearn or extxyz")


def read_spec(spec: DatasetSpec, head: str | None = None) -> list[Sample]:
    """The samples of a training config's data set (file or store), at most ``spec.limit``.

    ``head`` overrides the spec's head (replay data keep the base model's head).
    """
    head = spec.head if head is None else head
    if spec.store is not None:
        from mlipflows.training.store_data import read_store

        samples = read_store(spec.store, head, spec.weight)
    else:
        assert spec.path is not None  # the spec's validator allows only these two
        samples = read_dataset(spec.path, spec.format, head, spec.weight)
    return samples[: spec.limit]


@dataclass
class Targets:
    """Labels of a collated batch (tensors on the batch device/dtype)."""

    energy: torch.Tensor  # (S,)
    n_atoms: torch.Tensor  # (S,)
    forces: torch.Tensor  # (N, 3), zeros where missing
    force_mask: torch.Tensor  # (N,) bool
    stress: torch.Tensor  # (S, 3, 3)
    stress_mask: torch.Tensor  # (S,) bool
    weight: torch.Tensor  # (S,)
    head: torch.Tensor  # (S,) int64
    charge: torch.Tensor  # (S,)


def collate(
    samples: Sequence[Sample],
    heads: list[str],
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> tuple[Batch, Targets]:
    """One :class:`Batch` plus its labels."""
    batch = Batch.from_atoms([s.atoms for s in samples], device=device, dtype=dtype)
    f = dict(dtype=dtype, device=device)
    forces = [s.forces if s.forces is not None else np.zeros((s.n_atoms, 3)) for s in samples]
    fmask = np.concatenate([np.full(s.n_atoms, s.forces is not None) for s in samples])
    stress = [s.stress if s.stress is not None else np.zeros((3, 3)) for s in samples]
    targets = Targets(
        energy=torch.tensor([s.energy for s in samples], **f),
        n_atoms=torch.tensor([s.n_atoms for s in samples], **f),
        forces=torch.as_tensor(np.concatenate(forces), **f),
        force_mask=torch.as_tensor(fmask, device=device),
        stress=torch.as_tensor(np.stack(stress), **f),
        stress_mask=torch.tensor([s.stress is not None for s in samples], device=device),
        weight=torch.tensor([s.weight for s in samples], **f),
        head=torch.tensor([heads.index(s.head) for s in samples], dtype=torch.long, device=device),
        charge=torch.tensor([s.charge for s in samples], **f),
    )
    return batch, targets
