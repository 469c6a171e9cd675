"""Charge equilibration (Qeq) of Gaussian charges with a total-charge constraint per structure.

The charges minimise (Rappé & Goddard 1991; Gaussian-charge form of Ko et al. 2021)

    E_Qeq(q) = Σ_i (χ_i q_i + ½ J_i q_i²) + E_es(q)    subject to  Σ_{i∈s} q_i = Q_s,

with electronegativities χ_i (eV/e), hardnesses J_i > 0 (eV/e²) and E_es the Gaussian-charge
Coulomb energy of :mod:`.coulomb` (its Gaussian self-energy adds k_e/(σ_i√π) to the hardness).
Stationarity gives (A + diag J) q + χ = λ_s 1 with A_ij = ∂φ_i/∂q_j.

* :func:`solve_qeq` solves that bordered linear system exactly per structure, in float64.
* :func:`diagonal_qeq` drops A: q_i = (λ_s - χ_i)/J_i with λ_s fixed by Σq = Q_s. Passing
  χ_i + φ_i (the potential of the previous charges) as χ gives the per-block iterative
  approximation of MPNICE (Weber et al., 2025), one Jacobi-like step per interaction block.

Both conserve the total charge exactly and are unchanged when every χ of a structure shifts by
the same constant (the shift is absorbed by λ_s).
"""

from __future__ import annotations

import torch

from mlipflows.engine.batch import segment_sum
from mlipflows.models.electrostatics.coulomb import CoulombOperator


def diagonal_qeq(
    chi: torch.Tensor,
    hardness: torch.Tensor,
    total_charge: torch.Tensor,
    system_idx: torch.Tensor,
) -> torch.Tensor:
    """Closed-form Qeq without off-diagonal Coulomb coupling.

    Args:
        chi: (N,) electronegativities (plus any external potential), eV/e.
        hardness: (N,) J_i > 0, eV/e².
        total_charge: (S,) Q_s, e.
        system_idx: (N,) structure of each atom.

    Returns:
        (N,) charges, e; Σ_{i∈s} q_i = Q_s.
    """
    n_sys = int(total_charge.shape[0])
    inv_j = 1.0 / hardness
    lam = (total_charge + segment_sum(chi * inv_j, system_idx, n_sys)) / segment_sum(inv_j, system_idx, n_sys)
    return (lam[system_idx] - chi) * inv_j


def solve_qeq(
    operator: CoulombOperator,
    chi: torch.Tensor,
    hardness: torch.Tensor,
    total_charge: torch.Tensor,
) -> torch.Tensor:
    """Exact Gaussian-charge Qeq: one bordered linear solve per structure, float64.

    Cost O(N²) memory and O(N³) time per structure: for references and small systems.

    Returns:
        (N,) charges, e, in the dtype of ``chi`` (differentiable in χ, J, positions, cells).
    """
    coupling = operator.matrix()  # A_ij = ∂φ_i/∂q_j (block diagonal over structures)
    q = torch.zeros_like(chi)
    for s in range(int(total_charge.shape[0])):
        idx = torch.nonzero(operator.system_idx == s).flatten()
        m = idx.numel()
        a = coupling[idx][:, idx].double() + torch.diag(hardness[idx].double())
        ones = torch.ones((m, 1), dtype=torch.float64, device=chi.device)
        bordered = torch.cat(
            [
                torch.cat([a, ones], 1),
                torch.cat([ones.T, torch.zeros((1, 1), dtype=torch.float64, device=chi.device)], 1),
            ],
            0,
        )
        rhs = torch.cat([-chi[idx].double(), total_charge[s : s + 1].double()])
        sol = torch.linalg.solve(bordered, rhs)
        q = q.index_put((idx,), sol[:m].to(chi.dtype))
    return q


def qeq_energy(
    operator: CoulombOperator,
    charges: torch.Tensor,
    chi: torch.Tensor,
    hardness: torch.Tensor,
) -> torch.Tensor:
    """(S,) E_Qeq = Σ (χ q + ½ J q²) + E_es per structure, eV."""
    local = chi * charges + 0.5 * hardness * charges**2
    return segment_sum(local, operator.system_idx, operator.n_systems) + operator.energy(charges)
