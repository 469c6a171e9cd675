"""Many structures as one flat batch of tensors (TorchSim's idea: a ``system_idx`` per atom).

Cells are stored as row vectors (``cell[s, i]`` is lattice vector *i* of system *s*, Å), so
Cartesian = fractional @ cell, the pymatgen/ASE convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Lattice, Structure


@dataclass
class Batch:
    """A flat batch of periodic (or partly periodic) atomic systems.

    Attributes:
        positions: (N, 3) Cartesian positions, Å.
        atomic_numbers: (N,) int64.
        system_idx: (N,) int64, which system each atom belongs to (0..S-1, sorted).
        cell: (S, 3, 3) lattice vectors as rows, Å.
        pbc: (S, 3) bool.
    """

    positions: torch.Tensor
    atomic_numbers: torch.Tensor
    system_idx: torch.Tensor
    cell: torch.Tensor
    pbc: torch.Tensor

    @property
    def n_systems(self) -> int:
        return int(self.cell.shape[0])

    @property
    def n_atoms(self) -> torch.Tensor:
        """(S,) number of atoms per system."""
        return torch.bincount(self.system_idx, minlength=self.n_systems)

    @property
    def device(self) -> torch.device:
        return self.positions.device

    @property
    def volume(self) -> torch.Tensor:
        """(S,) cell volumes, Å³."""
        return torch.linalg.det(self.cell).abs()

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Batch:
        """Copy to a device and/or float dtype (integer fields keep their dtype)."""
        return Batch(
            positions=self.positions.to(device=device, dtype=dtype),
            atomic_numbers=self.atomic_numbers.to(device=device),
            system_idx=self.system_idx.to(device=device),
            cell=self.cell.to(device=device, dtype=dtype),
            pbc=self.pbc.to(device=device),
        )

    @classmethod
    def from_structures(
        cls,
        structures: Sequence[Structure],
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> Batch:
        """Concatenate pymatgen Structures (fully periodic) into one batch."""
        if len(structures) == 0:
            raise ValueError("cannot build a Batch from zero structures")
        pos = np.concatenate([s.cart_coords for s in structures])
        z = np.concatenate([[site.specie.Z for site in s] for s in structures])
        sys_idx = np.repeat(np.arange(len(structures)), [len(s) for s in structures])
        cell = np.stack([s.lattice.matrix for s in structures])
        return cls(
            positions=torch.as_tensor(pos, dtype=dtype, device=device),
            atomic_numbers=torch.as_tensor(z, dtype=torch.long, device=device),
            system_idx=torch.as_tensor(sys_idx, dtype=torch.long, device=device),
            cell=torch.as_tensor(cell, dtype=dtype, device=device),
            pbc=torch.ones((len(structures), 3), dtype=torch.bool, device=device),
        )

    @classmethod
    def from_atoms(
        cls,
        atoms_list: Sequence,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> Batch:
        """Concatenate ASE Atoms (any PBC) into one batch."""
        if len(atoms_list) == 0:
            raise ValueError("cannot build a Batch from zero structures")
        pos = np.concatenate([a.get_positions() for a in atoms_list])
        z = np.concatenate([a.get_atomic_numbers() for a in atoms_list])
        sys_idx = np.repeat(np.arange(len(atoms_list)), [len(a) for a in atoms_list])
        cell = np.stack([np.asarray(a.get_cell()) for a in atoms_list])
        pbc = np.stack([a.get_pbc() for a in atoms_list])
        return cls(
            positions=torch.as_tensor(pos, dtype=dtype, device=device),
            atomic_numbers=torch.as_tensor(z, dtype=torch.long, device=device),
            system_idx=torch.as_tensor(sys_idx, dtype=torch.long, device=device),
            cell=torch.as_tensor(cell, dtype=dtype, device=device),
            pbc=torch.as_tensor(pbc, dtype=torch.bool, device=device),
        )

    def atom_mask(self, systems: Sequence[int]) -> torch.Tensor:
        """(N,) bool: the atoms of ``systems``."""
        return torch.isin(self.system_idx, torch.as_tensor(list(systems), device=self.device))

    def subset(self, systems: Sequence[int]) -> Batch:
        """The batch of ``systems`` only, renumbered 0..len(systems)-1 in the given order."""
        sel = torch.as_tensor(list(systems), device=self.device)
        atoms = self.atom_mask(systems)
        remap = torch.full((self.n_systems,), -1, dtype=torch.long, device=self.device)
        remap[sel] = torch.arange(len(sel), device=self.device)
        return Batch(
            positions=self.positions[atoms],
            atomic_numbers=self.atomic_numbers[atoms],
            system_idx=remap[self.system_idx[atoms]],
            cell=self.cell[sel],
            pbc=self.pbc[sel],
        )

    def split_positions(self) -> list[torch.Tensor]:
        """Per-system (n_i, 3) views of ``positions``."""
        return list(torch.split(self.positions, self.n_atoms.tolist()))

    def to_structures(self) -> list[Structure]:
        """Back to pymatgen Structures (positions and cells in float64)."""
        out = []
        counts = self.n_atoms.tolist()
        pos = torch.split(self.positions.detach().cpu().double(), counts)
        zs = torch.split(self.atomic_numbers.detach().cpu(), counts)
        cells = self.cell.detach().cpu().double().numpy()
        for p, z, c in zip(pos, zs, cells, strict=True):
            out.append(Structure(Lattice(c), z.tolist(), p.numpy(), coords_are_cartesian=True))
        return out


def segment_sum(values: torch.Tensor, index: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Sum rows of ``values`` into ``n_segments`` bins given by ``index`` (differentiable)."""
    out = torch.zeros((n_segments, *values.shape[1:]), dtype=values.dtype, device=values.device)
    return out.index_add_(0, index, values)
