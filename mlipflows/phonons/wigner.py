"""The Wigner coherence term as Simoncelli, Marzari and Mauri define it, on phono3py ≥ 4.

SMM19 (Nat. Phys. 15, 809 (2019)) writes κ_C with the velocity operator
V_ss' = ⟨s|∂√D/∂q|s'⟩ = ⟨s|∂D/∂q|s'⟩ / (ω_s + ω_s'). phono3py ≤ 3.30 computed exactly that
(``transport_type="MS-SMM19"``), and it is what the κ_SRME references (k_SRME, Matbench
Discovery) ran. phono3py 4 no longer ships it; its in-tree ``smm19`` keeps SMM19's heat-capacity
matrix but uses the Hardy velocity matrix of its Green-Kubo variants,
⟨s|∂D/∂q|s'⟩ / (2√(ω_s ω_s')), whose square is larger by (ω_s + ω_s')² / (4 ω_s ω_s') ≥ 1,
so its κ_C is too large wherever coherences matter (PbTe +29 %, with the same force constants).

phono3py's inter-band kernel multiplies the heat-capacity matrix by |V_ss'|² element by element,
so the original term is phono3py's own SMM19 heat-capacity matrix times
4 ω_s ω_s' / (ω_s + ω_s')²: one registered variant, through phono3py's plugin interface, and
everything else (velocities, k-star sums, linewidths, isotopes) stays phono3py's.
``benchmarks/kappa_wigner_codes.py`` checks it against phono3py 3.30 on the same force constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from phono3py.conductivity.interband_variant import register_interband_variant
from phono3py.phonon.heat_capacity_matrix import mode_cv_matrix_smm19

# phono3py's method is f"{VARIANT}-rta"; 3.30 called the same term "MS-SMM19", a name we leave
# free for a plugin that brings 3.30's own code back
VARIANT = "mlipflows-SMM19"
# what the stored settings and benchmark tables say produced κ_C
CODE = "SMM19 velocity operator <d sqrt(D)/dq> (as phono3py 3.x), via phono3py's SMM19 kernel"
# phono3py 3.30 counted a band pair closer than this (THz) as a population, not a coherence
DEGENERATE_THZ = 1e-4


def original_cv_matrix(temps: NDArray[np.double], freqs: NDArray[np.double]) -> NDArray[np.double]:
    """SMM19's heat-capacity matrix, rescaled so that phono3py's |V|² becomes |⟨∂√D/∂q⟩|²."""
    cvm = mode_cv_matrix_smm19(temps, freqs)
    # phono3py drops pairs with a mode below its cutoff afterwards; zero them here as well, so
    # that a zero or imaginary (negative) mode never yields a meaningless ratio
    positive = np.where(freqs > 0, freqs, 0.0)
    f_add = np.add.outer(positive, positive)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(f_add > 0, 4 * np.multiply.outer(positive, positive) / f_add**2, 0.0)
    return np.ascontiguousarray(cvm * ratio[None, :, :])


_registered = False


def register() -> str:
    """Make ``transport_type=VARIANT`` available to phono3py (idempotent); returns the name."""
    global _registered
    if not _registered:
        register_interband_variant(VARIANT, original_cv_matrix)
        _registered = True
    return VARIANT


def split_populations(
    matrix: NDArray[np.double], frequencies: NDArray[np.double]
) -> tuple[NDArray[np.double], NDArray[np.double]]:
    """Per-mode κ_P (T, q, band, 6) and κ_C (T, q, band, band, 6) as phono3py 3.30 split them.

    A band pair degenerate to ``DEGENERATE_THZ`` (the diagonal included) is a population term,
    shared equally by its two bands; every other pair is a coherence.

    Args:
        matrix: phono3py's band-pair κ matrix for one σ, (T, q, band, band, 6).
        frequencies: (q, band) THz at the same grid points.
    """
    degenerate = np.abs(frequencies[:, :, None] - frequencies[:, None, :]) < DEGENERATE_THZ
    mask = degenerate[None, :, :, :, None]
    populations = np.where(mask, matrix, 0.0)
    kappa_p = 0.5 * (populations.sum(axis=3) + populations.sum(axis=2))
    return kappa_p, np.where(mask, 0.0, matrix)


def parts(
    tc: Any,
) -> tuple[NDArray[np.double], NDArray[np.double], NDArray[np.double], NDArray[np.double]]:
    """Per-mode κ_P, per-pair κ_C and their totals κ_P, κ_C (T, 6) of an inter-band run (first σ).

    Args:
        tc: ``Phono3py.thermal_conductivity`` after a run with ``transport_type=register()``
            (or phono3py's own ``"smm19"``).
    """
    matrix = np.asarray(tc.mode_kappa_matrix)[0]  # (T, q, band, band, 6), grid weights included
    populations, coherence = split_populations(matrix, np.asarray(tc.frequencies))
    n_mesh = float(np.asarray(tc.grid_weights).sum())
    return (
        populations,
        coherence,
        populations.sum(axis=(1, 2)) / n_mesh,
        coherence.sum(axis=(1, 2, 3)) / n_mesh,
    )
