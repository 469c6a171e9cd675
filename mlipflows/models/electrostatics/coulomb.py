"""Coulomb interaction of Gaussian charges: direct sums for molecules, Ewald sums for crystals.

Atom i carries a Gaussian charge of width σ_i (Å); two such charges interact through
k_e erf(r / (√2 γ_ij)) / r with γ_ij = sqrt(σ_i² + σ_j²), and each has the self-energy
k_e q_i² / (2 σ_i √π) (the r → 0 limit of the same kernel at γ_ii = √2 σ_i). The electrostatic
energy is E = ½ Σ_i q_i φ_i with the potential φ_i = ∂E/∂q_i (V = eV/e), which is linear in q.

Crystals (fully periodic) use the Ewald splitting with a screening Gaussian of width η
(Ewald 1921; Gaussian-charge form as in Ko et al., 4G-HDNNP, Nat. Commun. 2021):

    φ_i = Σ_{j,n}' q_j k_e [erfc(r/√2η) - erfc(r/√2γ_ij)] / r                 (real space)
        + q_i k_e [1/(σ_i √π) - √(2/π)/η]                                        (self)
        + (4π k_e / V) Σ_{k≠0} exp(-k²η²/2) / k² Re[e^{-ik·r_i} S(k)]            (reciprocal)
        - 2π k_e η² Q / V                                                         (background)

with S(k) = Σ_j q_j e^{ik·r_j}. The background term is the uniform neutralising charge of a
cell with net charge Q; it makes E independent of η for charged cells too. Partly periodic
systems (slabs with vacuum along a non-periodic axis) are not supported: make them periodic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import erfcinv

from mlipflows.engine.batch import Batch, segment_sum
from mlipflows.engine.neighbors import neighbor_list

COULOMB_EV_A = 14.399645478425668  # e² / (4π ε0), eV·Å


@dataclass
class CoulombOperator:
    """φ(q) for one geometry: built once per forward pass, applied to any number of charge sets.

    All coefficient tensors are differentiable in positions, cells and widths.
    """

    n_systems: int
    system_idx: torch.Tensor
    self_coeff: torch.Tensor  # (N,)
    pair_i: torch.Tensor  # (P,) φ_i += kernel · q_j
    pair_j: torch.Tensor
    pair_kernel: torch.Tensor  # (P,)
    rec_atoms: torch.Tensor  # (M,) atoms of periodic systems
    rec_system: torch.Tensor  # (M,) their row in ``rec_weights``
    rec_cos: torch.Tensor  # (M, K)
    rec_sin: torch.Tensor  # (M, K)
    rec_weights: torch.Tensor  # (S_p, K) 0 on padding
    background: torch.Tensor  # (S,) φ_i += background[s] · Q_s

    def potential(self, q: torch.Tensor) -> torch.Tensor:
        """Electrostatic potential φ (N,) or (N, C) in V for charges q (N,) or (N, C) in e."""
        cols = q if q.dim() == 2 else q[:, None]
        phi = self.self_coeff[:, None] * cols
        phi = phi.index_add(0, self.pair_i, self.pair_kernel[:, None] * cols[self.pair_j])
        if self.rec_atoms.numel():
            qa = cols[self.rec_atoms]  # (M, C)
            n_p = self.rec_weights.shape[0]
            c_k = segment_sum(self.rec_cos[:, :, None] * qa[:, None, :], self.rec_system, n_p)
            s_k = segment_sum(self.rec_sin[:, :, None] * qa[:, None, :], self.rec_system, n_p)
            w = self.rec_weights[self.rec_system]  # (M, K)
            rec = torch.einsum("mk,mkc->mc", w * self.rec_cos, c_k[self.rec_system])
            rec = rec + torch.einsum("mk,mkc->mc", w * self.rec_sin, s_k[self.rec_system])
            phi = phi.index_add(0, self.rec_atoms, rec)
        total = segment_sum(cols, self.system_idx, self.n_systems)
        phi = phi + (self.background[:, None] * total)[self.system_idx]
        return phi if q.dim() == 2 else phi[:, 0]

    def matrix(self) -> torch.Tensor:
        """(N, N) A_ij = ∂φ_i/∂q_j, zero between structures; equals ``potential(eye)``.

        Built from the coefficients directly: O(pairs + Σ_s M_s² K) instead of applying the
        operator to N unit charges (O(N · (pairs + M K)), which made exact Qeq the bottleneck
        of training on batches).
        """
        n = int(self.system_idx.shape[0])
        a = torch.diag(self.self_coeff)
        a = a.index_put((self.pair_i, self.pair_j), self.pair_kernel, accumulate=True)
        if self.rec_atoms.numel():
            w = self.rec_weights[self.rec_system]
            rec = (w * self.rec_cos) @ self.rec_cos.T + (w * self.rec_sin) @ self.rec_sin.T
            rec = rec * (self.rec_system[:, None] == self.rec_system[None, :])
            rows = self.rec_atoms[:, None].expand_as(rec)
            cols = self.rec_atoms[None, :].expand_as(rec)
            a = a.index_put((rows, cols), rec, accumulate=True)
        same = self.system_idx[:, None] == self.system_idx[None, :]
        background = self.background[self.system_idx][:, None].expand(n, n)
        return a + torch.where(same, background, torch.zeros_like(background))

    def energy(self, q: torch.Tensor) -> torch.Tensor:
        """(S,) electrostatic energy ½ Σ q_i φ_i per structure, eV."""
        return 0.5 * segment_sum(q * self.potential(q), self.system_idx, self.n_systems)


def ewald_parameters(real_cutoff: float, accuracy: float) -> tuple[float, float]:
    """(η, k_max): η (Å) so that erfc(r_c / √2η) = ``accuracy``; k_max (1/Å) the matching
    reciprocal cutoff, exp(-k_max² η²/2) = exp(-x²) with erfc(x) = ``accuracy``, so both sums
    drop terms of the same relative size."""
    x = float(erfcinv(accuracy))
    eta = real_cutoff / (math.sqrt(2.0) * x)
    return eta, math.sqrt(2.0) * x / eta


def _half_space_grid(cell: np.ndarray, k_max: float) -> np.ndarray:
    """Integer vectors n ≠ 0, one of each ±n pair, with |n · 2π cell⁻ᵀ| ≤ k_max."""
    recip = 2.0 * np.pi * np.linalg.inv(cell).T
    n_max = np.ceil(k_max * np.linalg.norm(cell, axis=1) / (2.0 * np.pi)).astype(int)
    axes = [np.arange(-m, m + 1) for m in n_max]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    first = np.where(grid[:, 0] != 0, grid[:, 0], np.where(grid[:, 1] != 0, grid[:, 1], grid[:, 2]))
    grid = grid[first > 0]
    k = grid @ recip
    return grid[(k * k).sum(1) <= k_max * k_max]


def _molecule_pairs(system_idx: torch.Tensor, molecules: list[int], counts: list[int]) -> torch.Tensor:
    """(2, P) all ordered pairs i ≠ j inside each non-periodic system."""
    offsets = np.concatenate([[0], np.cumsum(counts)])
    parts = []
    for s in molecules:
        idx = np.arange(offsets[s], offsets[s + 1])
        ii, jj = np.meshgrid(idx, idx, indexing="ij")
        keep = ii != jj
        parts.append(np.stack([ii[keep], jj[keep]]))
    if not parts:
        return torch.zeros((2, 0), dtype=torch.long, device=system_idx.device)
    return torch.as_tensor(np.concatenate(parts, axis=1), device=system_idx.device)


def coulomb_operator(
    geometry: Batch,
    sigma: torch.Tensor,
    real_cutoff: float = 8.0,
    accuracy: float = 1e-8,
) -> CoulombOperator:
    """Build φ(q) for a batch of molecules (no PBC) and crystals (3D PBC).

    Args:
        geometry: positions (Å) and cells, possibly attached to an autograd graph (strain).
        sigma: (N,) Gaussian charge widths, Å.
        real_cutoff: Ewald real-space cutoff, Å (raised when wide Gaussians need more).
        accuracy: relative size of the neglected real- and reciprocal-space terms.
    """
    pos, cell, sys_idx, pbc = geometry.positions, geometry.cell, geometry.system_idx, geometry.pbc
    dtype, device = pos.dtype, pos.device
    n_sys = geometry.n_systems
    periodic = pbc.all(dim=1)
    molecule = ~pbc.any(dim=1)
    if bool((~periodic & ~molecule).any()):
        bad = torch.nonzero(~periodic & ~molecule).flatten().tolist()
        raise ValueError(
            f"systems {bad} are partly periodic; the Coulomb sums need either full 3D PBC "
            "(add vacuum and make the slab periodic) or none (a molecule/cluster)"
        )
    x = float(erfcinv(accuracy))
    sigma_max = float(sigma.detach().max()) if sigma.numel() else 0.0
    # erfc(r/√2γ) must be negligible at the cutoff too; γ ≤ √2 σ_max
    r_cut = max(real_cutoff, 2.0 * sigma_max * x)
    eta, k_max = ewald_parameters(r_cut, accuracy)
    counts = torch.bincount(sys_idx, minlength=n_sys).tolist()

    is_periodic_atom = periodic[sys_idx]
    self_coeff = COULOMB_EV_A / (sigma * math.sqrt(math.pi))
    self_coeff = self_coeff - is_periodic_atom.to(dtype) * COULOMB_EV_A * math.sqrt(2.0 / math.pi) / eta

    pi_list, pj_list, kern_list = [], [], []
    if bool(periodic.any()):
        graph = neighbor_list(geometry, r_cut)
        keep = periodic[graph.edge_system]
        i, j = graph.edge_index[:, keep]
        shifts = graph.unit_shifts[keep].to(dtype)
        vec = pos[j] - pos[i] + torch.einsum("ek,ekl->el", shifts, cell[graph.edge_system[keep]])
        r = vec.norm(dim=1)
        gamma = torch.sqrt(sigma[i] ** 2 + sigma[j] ** 2)
        kern = torch.erfc(r / (math.sqrt(2.0) * eta)) - torch.erfc(r / (math.sqrt(2.0) * gamma))
        pi_list.append(i)
        pj_list.append(j)
        kern_list.append(COULOMB_EV_A * kern / r)
    molecules = torch.nonzero(molecule).flatten().tolist()
    if molecules:
        i, j = _molecule_pairs(sys_idx, molecules, counts)
        r = (pos[j] - pos[i]).norm(dim=1)
        gamma = torch.sqrt(sigma[i] ** 2 + sigma[j] ** 2)
        pi_list.append(i)
        pj_list.append(j)
        kern_list.append(COULOMB_EV_A * torch.erf(r / (math.sqrt(2.0) * gamma)) / r)
    empty_l = torch.zeros(0, dtype=torch.long, device=device)
    pair_i = torch.cat(pi_list) if pi_list else empty_l
    pair_j = torch.cat(pj_list) if pj_list else empty_l
    pair_kernel = torch.cat(kern_list) if kern_list else torch.zeros(0, dtype=dtype, device=device)

    volume = torch.linalg.det(cell).abs()
    background = torch.where(
        periodic, -2.0 * math.pi * COULOMB_EV_A * eta**2 / volume.clamp_min(1e-12), torch.zeros_like(volume)
    )
    rec = _reciprocal_terms(pos, cell, sys_idx, periodic, eta, k_max)
    return CoulombOperator(
        n_systems=n_sys,
        system_idx=sys_idx,
        self_coeff=self_coeff,
        pair_i=pair_i,
        pair_j=pair_j,
        pair_kernel=pair_kernel,
        background=background,
        **rec,
    )


def _reciprocal_terms(
    pos: torch.Tensor,
    cell: torch.Tensor,
    sys_idx: torch.Tensor,
    periodic: torch.Tensor,
    eta: float,
    k_max: float,
) -> dict[str, torch.Tensor]:
    """Padded k-vectors of every periodic system and the atoms' phases cos/sin(k · r_i)."""
    dtype, device = pos.dtype, pos.device
    systems = torch.nonzero(periodic).flatten().tolist()
    if not systems:
        z = torch.zeros((0, 0), dtype=dtype, device=device)
        e = torch.zeros(0, dtype=torch.long, device=device)
        return dict(rec_atoms=e, rec_system=e, rec_cos=z, rec_sin=z, rec_weights=z)
    cells_np = cell.detach().cpu().double().numpy()
    grids = [_half_space_grid(cells_np[s], k_max) for s in systems]
    k_pad = max(1, max(len(g) for g in grids))
    n_int = torch.zeros((len(systems), k_pad, 3), dtype=dtype, device=device)
    mask = torch.zeros((len(systems), k_pad), dtype=torch.bool, device=device)
    for row, g in enumerate(grids):
        n_int[row, : len(g)] = torch.as_tensor(g, dtype=dtype, device=device)
        mask[row, : len(g)] = True
    cells = cell[systems]
    recip = 2.0 * math.pi * torch.linalg.inv(cells).transpose(1, 2)
    kvec = torch.bmm(n_int, recip)  # (S_p, K, 3), differentiable in the cell (stress)
    ksq = torch.where(mask, (kvec * kvec).sum(-1), torch.ones_like(mask, dtype=dtype))
    volume = torch.linalg.det(cells).abs()
    # factor 2: only one of each ±k pair is stored
    weights = 2.0 * 4.0 * math.pi * COULOMB_EV_A / volume[:, None] * torch.exp(-0.5 * eta**2 * ksq) / ksq
    weights = torch.where(mask, weights, torch.zeros_like(weights))
    row_of = torch.full((int(periodic.shape[0]),), -1, dtype=torch.long, device=device)
    row_of[systems] = torch.arange(len(systems), device=device)
    atoms = torch.nonzero(periodic[sys_idx]).flatten()
    rows = row_of[sys_idx[atoms]]
    phase = torch.einsum("mkd,md->mk", kvec[rows], pos[atoms])
    return dict(
        rec_atoms=atoms,
        rec_system=rows,
        rec_cos=torch.cos(phase),
        rec_sin=torch.sin(phase),
        rec_weights=weights,
    )
