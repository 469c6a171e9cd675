"""Space-group symmetrization of forces, stresses, positions and cells, batched over systems.

The operations (R, t) of each structure come from spglib (through pymatgen's
``SpacegroupAnalyzer``) in fractional coordinates, with the atom permutation of each operation
from phonopy (atom i goes to atom perm[i]: x_perm[i] = R x_i + t mod 1). Everything after that
is tensor algebra over one flat list of (operation, atom) pairs for the whole batch, so a batch
of many structures is symmetrized in a handful of ``index_add`` calls.

With lattice vectors as rows L (Cartesian r = Lᵀ x), an operation acts on Cartesian vectors as
R_c = Lᵀ R L⁻ᵀ; a symmetric vector field obeys F_perm[i] = R_c F_i and a symmetric tensor
σ = R_c σ R_cᵀ. Averaging over the group projects onto the symmetric part (Reynolds operator),
which is what ASE's ``FixSymmetry`` does one structure at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from phonopy.structure.cells import compute_all_sg_permutations
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer


@dataclass(frozen=True)
class SymmetryOps:
    """Space-group operations of one structure, fractional coordinates.

    Attributes:
        rotations: (n_ops, 3, 3) integer rotation matrices acting on fractional column vectors.
        translations: (n_ops, 3) fractional translations.
        permutations: (n_ops, n_atoms) atom i is mapped onto atom ``permutations[op, i]``.
        spacegroup: international space-group number (1 when spglib finds nothing).
    """

    rotations: np.ndarray
    translations: np.ndarray
    permutations: np.ndarray
    spacegroup: int


# One symmetry default for every command that keeps or uses symmetry (phonons, κ, elastic):
# tight enough that a genuinely distorted crystal keeps its distortion, loose enough for CIF
# round-off. Inputs that only look symmetric at a loose tolerance (rattled, noisy) get a warning
# naming the tolerance that would symmetrize them (the κ_SRME protocol keeps its own 1e-5).
DEFAULT_SYMPREC = 1e-3


LOOSE_TOLERANCES = (0.01, 0.05, 0.1, 0.2)  # Å: a rattled CIF's group shows by 0.2 (CeO2 example)


def loose_spacegroup(structure: Structure, symprec: float = DEFAULT_SYMPREC) -> tuple[int, float] | None:
    """The most symmetric space group ``structure`` has at a tolerance looser than ``symprec``
    (up to 0.2 Å), and the smallest tolerance that finds it; None if it stays P1/P-1.

    The scan goes on past the first group above P-1: a rattled rocksalt is Cm at 0.05 Å and
    Fm-3m only at 0.1 Å, and Cm is not what the user meant.
    """
    from pymatgen.symmetry.groups import PointGroup, SpaceGroup

    best: tuple[int, float] | None = None
    best_order = 2
    for loose in LOOSE_TOLERANCES:
        if loose <= symprec:
            continue
        number = spacegroup_number(structure, loose)
        order = len(PointGroup(SpaceGroup.from_int_number(number).point_group).symmetry_ops)
        if number > 2 and order > best_order:
            best, best_order = (number, loose), order
    return best


def symmetry_hint(
    structure: Structure, symprec: float = DEFAULT_SYMPREC, consequence: str = ""
) -> str | None:
    """A warning when ``structure`` is P1/P-1 at ``symprec`` but more symmetric at a looser one.

    ``consequence`` says what the command loses by the low symmetry (appended in parentheses).
    """
    tight = spacegroup_number(structure, symprec)
    if tight > 2:
        return None
    found = loose_spacegroup(structure, symprec)
    if found is None:
        return None
    number, loose = found
    symbol = SpacegroupAnalyzer(structure, symprec=loose).get_space_group_symbol()
    return (
        f"is P{'-' if tight == 2 else ''}1 at symprec {symprec:g} Å but {symbol} ({number}) at "
        f"{loose:g} Å: it looks rattled or noisy; pass --symprec {loose:g} to symmetrize it"
        + (f" ({consequence})" if consequence else "")
    )


def gained_symmetry(before: int | None, after: int | None) -> bool:
    """The point group before is a proper subgroup of the one after (1 → m-3m, not 6mm → -43m,
    which is another structure). pymatgen compares the groups in their standard settings only,
    so a pair it cannot decide counts as a change (the gate stays conservative)."""
    if not before or not after:
        return False
    import warnings

    from pymatgen.symmetry.groups import PointGroup, SpaceGroup

    old, new = (PointGroup(SpaceGroup.from_int_number(n).point_group) for n in (before, after))
    if new.order <= old.order:
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "only trivial subsets are tested": that is what we want
            return bool(old.is_subgroup(new))
    except NotImplementedError:
        return False


def contains_point_group(outer: int, inner: int) -> bool:
    """The point group of space group ``outer`` holds that of ``inner`` (equal counts)."""
    return outer == inner or gained_symmetry(inner, outer) or _same_point_group(inner, outer)


def _same_point_group(a: int, b: int) -> bool:
    from pymatgen.symmetry.groups import SpaceGroup

    return SpaceGroup.from_int_number(a).point_group == SpaceGroup.from_int_number(b).point_group


def symmetry_gain_is_genuine(before: int | None, after: int | None, loose: int | None) -> bool:
    """A relaxation that raised the space group found the structure the input meant.

    An input with symmetry (``before`` > 2) that gains more is a noisy form of the result. A
    P1/P-1 input is judged against ``loose``, its group at a loose tolerance
    (:func:`loose_spacegroup`): relaxing back to (a supergroup of) that is a gain; anything
    else (a rattled rocksalt going to Cmcm) is a change of structure. A P1 input with no loose
    group either has nothing to lose.
    """
    if not gained_symmetry(before, after) or after is None:
        return False
    if before is not None and before > 2:
        return True
    return loose is None or contains_point_group(after, loose)


def symmetry_change_note(
    before: int | None, after: int | None, when: str = "during relaxation", loose: int | None = None
) -> str:
    """What a changed space group means: a gain is a noisy input finding its symmetric form; a
    loss or a change to another structure means the input was not a minimum of the model."""
    if symmetry_gain_is_genuine(before, after, loose):
        return f"relaxed to a higher symmetry {when}: {before} → {after} (the input was a noisy form of it)"
    meant = f" (the input is {loose} to a loose tolerance)" if loose and (before or 0) <= 2 else ""
    return f"space group changed {when}: {before} → {after}{meant}"


def spacegroup_symbol(structure: Structure, symprec: float = DEFAULT_SYMPREC) -> str:
    """Hermann–Mauguin symbol and number, e.g. ``Fm-3m (225)``."""
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        return f"{sga.get_space_group_symbol()} ({sga.get_space_group_number()})"
    except (TypeError, ValueError):
        return "P1 (1)"


def spacegroup_number(structure: Structure, symprec: float = 1e-5) -> int:
    """International space-group number of ``structure`` at tolerance ``symprec`` (Å)."""
    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except (TypeError, ValueError):  # spglib gives up on degenerate cells
        return 1


def find_symmetry(structure: Structure, symprec: float = 1e-5) -> SymmetryOps:
    """Operations and atom permutations of ``structure`` (identity only if spglib finds none)."""
    n = len(structure)
    try:
        data = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
    except (TypeError, ValueError):
        data = None
    if data is None:
        return SymmetryOps(
            np.eye(3, dtype=np.int64)[None], np.zeros((1, 3)), np.arange(n)[None], spacegroup=1
        )
    rotations = np.asarray(data.rotations, dtype=np.int64)
    translations = np.asarray(data.translations, dtype=np.float64)
    types = [site.specie.Z for site in structure]
    perms = compute_all_sg_permutations(
        structure.frac_coords,
        rotations,
        translations,
        structure.lattice.matrix.T,
        symprec,
        types,
    )
    return SymmetryOps(rotations, translations, perms, spacegroup=int(data.number))


class BatchedSymmetry:
    """The operations of every system in a batch as flat tensors (float64, on ``device``).

    Attributes:
        rot: (O, 3, 3) fractional rotations of all operations of all systems.
        trans: (O, 3) fractional translations.
        op_sys: (O,) system of each operation.
        n_ops: (S,) number of operations per system.
        src, dst: (P,) global atom indices of every (operation, atom) pair: src goes to dst.
        pair_op: (P,) operation of each pair.
        atom_sys: (N,) system of each atom.
    """

    def __init__(self, ops: Sequence[SymmetryOps], device: torch.device | str = "cpu") -> None:
        f64 = dict(dtype=torch.float64, device=device)
        i64 = dict(dtype=torch.long, device=device)
        n_atoms = [o.permutations.shape[1] for o in ops]
        offsets = np.concatenate([[0], np.cumsum(n_atoms)[:-1]]).astype(np.int64)
        counts = [len(o.rotations) for o in ops]
        self.rot = torch.as_tensor(np.concatenate([o.rotations for o in ops]), **f64)
        self.trans = torch.as_tensor(np.concatenate([o.translations for o in ops]), **f64)
        self.op_sys = torch.as_tensor(np.repeat(np.arange(len(ops)), counts), **i64)
        self.n_ops = torch.as_tensor(counts, **f64)
        self.atom_sys = torch.as_tensor(np.repeat(np.arange(len(ops)), n_atoms), **i64)
        src, dst, pair_op = [], [], []
        op_offset = 0
        for o, off in zip(ops, offsets, strict=True):
            n_op, n = o.permutations.shape
            src.append(np.tile(np.arange(n), n_op) + off)
            dst.append(o.permutations.reshape(-1) + off)
            pair_op.append(np.repeat(np.arange(n_op), n) + op_offset)
            op_offset += n_op
        self.src = torch.as_tensor(np.concatenate(src), **i64)
        self.dst = torch.as_tensor(np.concatenate(dst), **i64)
        self.pair_op = torch.as_tensor(np.concatenate(pair_op), **i64)

    def cartesian_rotations(self, cell: torch.Tensor) -> torch.Tensor:
        """(O, 3, 3) rotations acting on Cartesian column vectors, R_c = Lᵀ R L⁻ᵀ."""
        lt = cell.transpose(1, 2)
        # one inverse per system, not per operation (supercells have hundreds of operations)
        return lt[self.op_sys] @ self.rot @ torch.linalg.inv(lt)[self.op_sys]

    def forces(
        self, forces: torch.Tensor, cell: torch.Tensor, r_c: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Symmetrized (N, 3) forces (eV/Å): F_j = ⟨R_c F_i⟩ over the pairs i → j.

        ``r_c``: the Cartesian rotations for ``cell`` when the caller already has them.
        """
        r_c = self.cartesian_rotations(cell) if r_c is None else r_c
        rotated = torch.einsum("pij,pj->pi", r_c[self.pair_op], forces[self.src])
        out = torch.zeros_like(forces).index_add_(0, self.dst, rotated)
        return out / self.n_ops[self.atom_sys, None]

    def stress(
        self, stress: torch.Tensor, cell: torch.Tensor, r_c: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Symmetrized (S, 3, 3) stress (any unit): σ = ⟨R_c σ R_cᵀ⟩."""
        r_c = self.cartesian_rotations(cell) if r_c is None else r_c
        rotated = r_c @ stress[self.op_sys] @ r_c.transpose(1, 2)
        out = torch.zeros_like(stress).index_add_(0, self.op_sys, rotated)
        return out / self.n_ops[:, None, None]

    def cell(self, cell: torch.Tensor) -> torch.Tensor:
        """Nearest cell (rows, Å) whose metric G = L Lᵀ is invariant, RᵀGR = G.

        The metric is averaged over the group and the cell rotated as little as possible onto it:
        L' = G_sym^½ G^-½ L keeps the orientation of L when it is already symmetric.
        """
        metric = cell @ cell.transpose(1, 2)
        rot = self.rot
        averaged = rot.transpose(1, 2) @ metric[self.op_sys] @ rot
        g_sym = torch.zeros_like(metric).index_add_(0, self.op_sys, averaged) / self.n_ops[:, None, None]
        return _sqrtm(g_sym) @ _inv_sqrtm(metric) @ cell

    def positions(self, positions: torch.Tensor, cell: torch.Tensor) -> torch.Tensor:
        """Symmetrized (N, 3) Cartesian positions (Å): each atom at the mean of its images.

        Differences are taken to the nearest periodic image so atoms on either side of a cell
        boundary average correctly.
        """
        inv = torch.linalg.inv(cell)[self.atom_sys]
        frac = torch.einsum("ni,nij->nj", positions, inv)
        image = torch.einsum("pij,pj->pi", self.rot[self.pair_op], frac[self.src]) + self.trans[self.pair_op]
        diff = image - frac[self.dst]
        diff = diff - torch.round(diff)
        shift = torch.zeros_like(frac).index_add_(0, self.dst, diff) / self.n_ops[self.atom_sys, None]
        return torch.einsum("ni,nij->nj", frac + shift, cell[self.atom_sys])


def _sqrtm(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(m)
    return v @ torch.diag_embed(w.clamp_min(0).sqrt()) @ v.transpose(-1, -2)


def _inv_sqrtm(m: torch.Tensor) -> torch.Tensor:
    w, v = torch.linalg.eigh(m)
    return v @ torch.diag_embed(w.rsqrt()) @ v.transpose(-1, -2)


def symmetrize_structure(structure: Structure, ops: SymmetryOps) -> Structure:
    """``structure`` with cell and positions projected onto the symmetric subspace of ``ops``."""
    sym = BatchedSymmetry([ops])
    cell = torch.tensor(structure.lattice.matrix, dtype=torch.float64)[None]
    pos = torch.tensor(structure.cart_coords, dtype=torch.float64)
    frac = torch.linalg.solve(cell[0].T, pos.T).T
    new_cell = sym.cell(cell)
    new_pos = sym.positions(frac @ new_cell[0], new_cell)
    return Structure(
        new_cell[0].numpy(),
        structure.species,
        new_pos.numpy(),
        coords_are_cartesian=True,
        site_properties=structure.site_properties or None,
    )
