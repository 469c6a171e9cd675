"""Lattice thermal conductivity with phono3py: fc2/fc3 supercells, κ in RTA and Wigner (SMM19).

We generate phono3py's displacements, supply the forces (batched elsewhere) and let phono3py
do the rest, following the κ_SRME reference protocol: symmetrized fc2 and fc3,
``symmetrize_fc3q=False``, isotope scattering, boundary mean free path 1 m, and the Wigner
transport equation of Simoncelli, Marzari and Mauri, Nat. Phys. 15, 809 (2019): κ_TOT = κ_P
(particle, Peierls RTA) + κ_C (coherences), with SMM19's own velocity operator as phono3py 3.x
computed it (:mod:`mlipflows.phonons.wigner`; phono3py 4's ``smm19`` differs).

Units: κ W/(m·K), Voigt order xx, yy, zz, yz, xz, xy; frequencies THz; temperatures K.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from phono3py import Phono3py
from pymatgen.core import Structure
from pymatgen.io.phonopy import get_pmg_structure

from mlipflows.phonons import wigner
from mlipflows.phonons.harmonic import (
    check_supercell_size,
    imaginary_mode_flags,
    phonopy_atoms,
    quiet_auto_primitive,
)

Transport = Literal["wigner", "rta"]


def make_phono3py(
    structure: Structure,
    fc3_supercell_matrix: Sequence | np.ndarray,
    fc2_supercell_matrix: Sequence | np.ndarray | None = None,
    primitive_matrix: str | np.ndarray | None = "auto",
    symprec: float = 1e-5,
    max_atoms: int | None = None,
) -> Phono3py:
    """A :class:`Phono3py` for ``structure``; fc2 may use a larger supercell than fc3.

    Raises:
        SupercellTooLargeError: either supercell holds more than ``max_atoms`` atoms.
    """
    fc3 = check_supercell_size(structure, fc3_supercell_matrix, max_atoms)
    fc2 = (
        None
        if fc2_supercell_matrix is None
        else check_supercell_size(structure, fc2_supercell_matrix, max_atoms)
    )
    with quiet_auto_primitive():
        return Phono3py(
            phonopy_atoms(structure),
            supercell_matrix=fc3,
            phonon_supercell_matrix=fc2,
            primitive_matrix=primitive_matrix,
            symprec=symprec,
        )


def kappa_supercells(ph3: Phono3py, distance: float = 0.03) -> tuple[list[Structure], list[Structure]]:
    """Generate the displacements (``distance`` Å, phono3py's default 0.03); return the fc3 and
    fc2 displaced supercells.

    With one supercell for both orders, fc2 comes from the fc3 dataset and the second list is
    empty. Pairs phono3py skips (``None``) are never produced here (no pair cutoff is used).
    """
    ph3.generate_displacements(distance=distance)
    fc3 = [get_pmg_structure(c) for c in ph3.supercells_with_displacements]
    fc2 = []
    if ph3.phonon_supercell_matrix is not None:
        fc2 = [get_pmg_structure(c) for c in ph3.phonon_supercells_with_displacements]
    return fc3, fc2


@dataclass
class KappaResult:
    """κ and its per-mode resolution on the irreducible q-mesh.

    Attributes:
        temperatures: (T,) K.
        mesh: q-mesh.
        kappa_p_rta / kappa_c / kappa_tot: (T, 6) W/(m·K). With ``transport="wigner"`` κ_P is
            the Wigner population term as phono3py 3.x split it (band pairs degenerate to 1e-4
            THz count as populations), which can exceed the plain RTA κ by a few tenths of a
            percent; with ``"rta"`` it is phono3py's RTA κ and κ_C is zero.
        kappa_tot_avg: (T,) mean of the xx, yy, zz components of κ_TOT.
        mode_kappa_tot: (T, n_q, n_bands, 6) per-mode κ_P + κ_C (coherences assigned to modes
            as in Matbench Discovery); Σ over q and bands / Σ weights = κ_TOT.
        frequencies: (n_q, n_bands) THz, Γ first.
        weights: (n_q,) q-point multiplicities.
        qpoints: (n_q, 3) reduced.
        heat_capacity: (T, n_q, n_bands) mode heat capacities, eV/K.
        fc2: fc2, eV/Å² (compact).
        imaginary: Matbench Discovery imaginary-mode flags on the mesh.
    """

    temperatures: np.ndarray
    mesh: list[int]
    kappa_p_rta: np.ndarray
    kappa_c: np.ndarray
    kappa_tot: np.ndarray
    kappa_tot_avg: np.ndarray
    mode_kappa_tot: np.ndarray
    frequencies: np.ndarray
    weights: np.ndarray
    qpoints: np.ndarray
    heat_capacity: np.ndarray
    fc2: np.ndarray
    imaginary: dict[str, bool]


def mode_kappa_total(
    mode_kappa_p: np.ndarray, mode_kappa_c: np.ndarray, heat_capacity: np.ndarray
) -> np.ndarray:
    """Per-mode κ_P + κ_C, (T, q, band, 6), Matbench Discovery's ``calc_mode_kappa_tot``.

    The coherence term of a band pair (b, b') is split between them in proportion to their heat
    capacities: κ_C(b') += 2 Σ_b κ_C(b, b') C_b / (C_b + C_b').

    Args:
        mode_kappa_p: (T, q, band, 6).
        mode_kappa_c: (T, q, band, band, 6), zero on the diagonal.
        heat_capacity: (T, q, band).
    """
    cv = heat_capacity[:, :, :, None, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        per_mode = 2 * (mode_kappa_c * cv / (cv + heat_capacity[:, :, None, :, None])).sum(axis=2)
    per_mode[np.isnan(per_mode)] = 0.0
    return per_mode + mode_kappa_p


def produce_fc2(ph3: Phono3py, fc2_forces: Sequence[np.ndarray], symmetrize_level: int = 1) -> None:
    """fc2 from the forces (eV/Å) on the phonon supercells, symmetrized ``symmetrize_level`` times.

    One pass of translational + permutation symmetrization is what phono3py 3.x did with
    ``symmetrize_fc2=True`` (the reference κ codes); phono3py 4 defaults to three.
    """
    ph3.phonon_forces = np.asarray(fc2_forces)
    ph3.produce_fc2()
    if symmetrize_level > 0:
        ph3.symmetrize_fc2(options=f"level={symmetrize_level}")


def mesh_frequencies(ph3: Phono3py, mesh: Sequence[int]) -> np.ndarray:
    """Harmonic frequencies (THz) on the points of ``mesh`` from fc2 alone (fc3 not needed).

    The κ protocols check these for imaginary modes before spending the fc3 forces.
    """
    ph3.mesh_numbers = list(mesh)
    ph3.init_phph_interaction(symmetrize_fc3q=False)
    ph3.run_phonon_solver()
    frequencies, _, _ = ph3.get_phonon_data()
    return np.asarray(frequencies)  # every BZ grid point, Γ first (as the k_SRME check reads them)


@dataclass
class StabilityGate:
    """Why a structure's fc3 and κ were skipped: imaginary modes or a broken space group."""

    reason: str
    imaginary: dict[str, bool]
    min_frequency: float


def stability_gate(
    frequencies: np.ndarray, spacegroup_before: int | None, spacegroup_after: int | None
) -> StabilityGate | None:
    """The reference κ codes' condition for computing fc3: no imaginary modes on the mesh
    (Matbench Discovery's rule) and the relaxation kept the space group. None = go on.
    """
    flags = imaginary_mode_flags(frequencies)
    low = float(np.nanmin(frequencies)) if np.isfinite(frequencies).any() else float("nan")
    if flags["any"]:
        return StabilityGate(f"imaginary modes (lowest {low:.3f} THz): κ not computed", flags, low)
    if (
        spacegroup_before is not None
        and spacegroup_after is not None
        and spacegroup_before != spacegroup_after
    ):
        return StabilityGate(
            f"space group changed in the relaxation ({spacegroup_before} → {spacegroup_after}): "
            "κ not computed",
            flags,
            low,
        )
    return None


def conductivity(
    ph3: Phono3py,
    fc3_forces: Sequence[np.ndarray],
    mesh: Sequence[int],
    temperatures: Sequence[float] = (300.0,),
    transport: Transport = "wigner",
    isotope: bool = True,
    boundary_mfp: float = 1e6,
    symmetrize_level: int = 1,
) -> KappaResult:
    """fc3 from the forces (eV/Å) and κ on ``mesh`` at ``temperatures`` (fc2 already produced).

    Args:
        ph3: phono3py object with displacements generated; with a separate phonon supercell,
            fc2 already set (:func:`produce_fc2`).
        fc3_forces: forces on every fc3 supercell, in phono3py's order.
        mesh: q-mesh.
        temperatures: K.
        transport: "wigner" (κ_P + κ_C, SMM19 as phono3py 3.x computed it) or "rta" (κ_P only).
        isotope: natural-abundance isotope scattering.
        boundary_mfp: boundary mean free path, µm (1e6 = 1 m: effectively bulk).
        symmetrize_level: passes of fc3 symmetrization (1, as phono3py 3.x did).
    """
    ph3.forces = np.asarray(fc3_forces)
    ph3.produce_fc3()  # without a phonon supercell this also makes fc2 (from the fc3 dataset)
    if symmetrize_level > 0:
        ph3.symmetrize_fc3(options=f"level={symmetrize_level}")
        if ph3.phonon_supercell_matrix is None:
            ph3.symmetrize_fc2(options=f"level={symmetrize_level}")
    ph3.mesh_numbers = list(mesh)
    ph3.init_phph_interaction(symmetrize_fc3q=False)
    ph3.run_thermal_conductivity(
        temperatures=list(temperatures),
        is_isotope=isotope,
        boundary_mfp=boundary_mfp,
        transport_type=wigner.register() if transport == "wigner" else None,
    )
    tc = ph3.thermal_conductivity
    cv = np.asarray(tc.mode_heat_capacities)
    if transport == "wigner":
        populations, coherence, kappa_p, kappa_c = wigner.parts(tc)
        mode = mode_kappa_total(populations, coherence, cv)
    else:
        kappa_p = np.asarray(tc.kappa)[0]
        kappa_c = np.zeros_like(kappa_p)
        mode = np.asarray(tc.mode_kappa)[0]
    kappa_tot = kappa_p + kappa_c
    frequencies = np.asarray(tc.frequencies)  # (n_irr_q, n_bands), Γ first
    return KappaResult(
        temperatures=np.asarray(tc.temperatures, dtype=float),
        mesh=[int(m) for m in ph3.mesh_numbers],
        kappa_p_rta=kappa_p,
        kappa_c=kappa_c,
        kappa_tot=kappa_tot,
        kappa_tot_avg=kappa_tot[:, :3].mean(axis=1),
        mode_kappa_tot=mode,
        frequencies=frequencies,
        weights=np.asarray(tc.grid_weights),
        qpoints=np.asarray(tc.qpoints),
        heat_capacity=cv,
        fc2=np.asarray(ph3.fc2),
        imaginary=imaginary_mode_flags(frequencies),
    )
