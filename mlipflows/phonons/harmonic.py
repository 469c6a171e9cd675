"""Harmonic phonons with phonopy: supercells, displacements, force constants and properties.

Our part is only the plumbing: phonopy generates the displacements, we compute the forces (in
one batched engine call, see :mod:`mlipflows.makers.phonons`), and phonopy does everything
else. Units follow phonopy: frequencies THz, force constants eV/Å², free energy kJ/mol,
entropy and heat capacity J/(K·mol), all per primitive cell (mol = Avogadro's number of cells).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from phonopy import Phonopy
from phonopy.structure.atoms import PhonopyAtoms
from phonopy.structure.cells import PrimitiveMatrixAutoDefaultWarning
from pymatgen.core import Structure
from pymatgen.io.phonopy import get_pmg_structure

# Matbench Discovery's tolerance on the three Γ acoustic modes, THz (its check_imaginary_freqs)
GAMMA_ACOUSTIC_TOLERANCE_THZ = -0.01


class SupercellTooLargeError(ValueError):
    """The supercell the settings ask for has more atoms than allowed."""


def periodic_widths(lattice: np.ndarray) -> list[float]:
    """Face-to-face widths V / |a_j × a_k| of a cell (rows), shorter than |a_i| when skewed."""
    volume = abs(np.linalg.det(lattice))
    return [volume / np.linalg.norm(np.cross(lattice[(i + 1) % 3], lattice[(i + 2) % 3])) for i in range(3)]


def _diagonal_for(lattice: np.ndarray, min_length: float) -> np.ndarray:
    """Diagonal repeats of ``lattice`` (rows) whose every periodic width is ≥ ``min_length``."""
    return np.diag([max(1, int(np.ceil(min_length / w - 1e-8))) for w in periodic_widths(lattice)])


def _conventional_transform(structure: Structure, symprec: float) -> np.ndarray | None:
    """Integer T with conventional rows = T @ the given rows, when the given cell is a primitive
    (or any sub-cell) of spglib's conventional cell; None otherwise."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        dataset = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_dataset()
    except (TypeError, ValueError):  # spglib finds no symmetry dataset
        return None
    if dataset is None:
        return None
    # spglib: (a_s b_s c_s) = (a b c) P⁻¹ for column vectors, so rows transform with P⁻ᵀ
    transform = np.linalg.inv(np.asarray(dataset.transformation_matrix, dtype=float)).T
    rounded = np.round(transform)
    if not np.allclose(transform, rounded, atol=1e-6) or round(abs(np.linalg.det(rounded))) < 1:
        return None
    return rounded.astype(int)


def supercell_matrix_for(structure: Structure, min_length: float, symprec: float = 1e-3) -> np.ndarray:
    """The smallest supercell whose every periodic width (face-to-face) is ≥ ``min_length`` Å.

    Candidates: a diagonal repeat of the given cell, and a diagonal repeat of its conventional
    cell (what phononDB and atomate2 use). For a primitive fcc or bcc input the second is often
    half the atoms: rocksalt LiF at 8 Å is 64 atoms instead of 128, and 146 fc3 displacements
    instead of 442. The width along lattice vector i is V / |a_j × a_k|, which for skewed cells
    is shorter than |a_i|; using it guarantees that images of a displaced atom are at least
    ``min_length`` apart. Ties keep the diagonal one. The matrix is phonopy's convention
    (supercell basis as columns = the cell's columns @ matrix), the transpose of pymatgen's.
    """
    lattice = structure.lattice.matrix
    best = _diagonal_for(lattice, min_length)
    transform = _conventional_transform(structure, symprec)
    if transform is not None and not np.array_equal(np.abs(transform), np.eye(3, dtype=int)):
        conventional = _diagonal_for(transform @ lattice, min_length) @ transform
        if abs(round(np.linalg.det(conventional))) < abs(round(np.linalg.det(best))):
            best = conventional.T
    return best


@contextmanager
def quiet_auto_primitive() -> Iterator[None]:
    """Silence phonopy 4's note that 'auto' now finds the primitive cell: we ask for it on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrimitiveMatrixAutoDefaultWarning)
        yield


def phonopy_atoms(structure: Structure) -> PhonopyAtoms:
    """``structure`` as PhonopyAtoms with phonopy's own masses (amu), as the reference κ codes use.

    phonopy's mass table lacks some elements (Po, At, ...); then pymatgen's masses are used.
    """
    symbols = [site.specie.symbol for site in structure]
    try:
        return PhonopyAtoms(
            symbols=symbols, cell=structure.lattice.matrix, scaled_positions=structure.frac_coords
        )
    except RuntimeError:  # "Masses of {...} are undefined"
        return PhonopyAtoms(
            symbols=symbols,
            cell=structure.lattice.matrix,
            scaled_positions=structure.frac_coords,
            masses=[float(site.specie.atomic_mass) for site in structure],
        )


def check_supercell_size(
    structure: Structure, supercell_matrix: Sequence | np.ndarray, max_atoms: int | None
) -> np.ndarray:
    """The 3×3 integer supercell matrix; raises :class:`SupercellTooLargeError` above ``max_atoms``."""
    matrix = np.asarray(supercell_matrix, dtype=int)
    if matrix.shape == (3,):
        matrix = np.diag(matrix)
    n_needed = round(abs(float(np.linalg.det(matrix)))) * len(structure)
    if max_atoms is not None and n_needed > max_atoms:
        raise SupercellTooLargeError(
            f"supercell {matrix.tolist()} of {structure.composition.reduced_formula} needs "
            f"{n_needed} atoms, more than max_atoms={max_atoms}; raise max_atoms or lower min_length"
        )
    return matrix


def make_phonopy(
    structure: Structure,
    supercell_matrix: Sequence[Sequence[int]] | np.ndarray,
    primitive_matrix: str | np.ndarray | None = "auto",
    symprec: float = 1e-5,
    max_atoms: int | None = None,
) -> Phonopy:
    """A :class:`Phonopy` object for ``structure`` (the unit cell) and ``supercell_matrix``.

    Raises:
        SupercellTooLargeError: the supercell would hold more than ``max_atoms`` atoms; the
            message says how many it needs.
    """
    matrix = check_supercell_size(structure, supercell_matrix, max_atoms)
    with quiet_auto_primitive():
        return Phonopy(
            phonopy_atoms(structure),
            supercell_matrix=matrix,
            primitive_matrix=primitive_matrix,
            symprec=symprec,
        )


def displaced_supercells(phonon: Phonopy, distance: float = 0.01) -> list[Structure]:
    """Generate phonopy's displacements (``distance`` Å) and return the displaced supercells."""
    phonon.generate_displacements(distance=distance)
    return [get_pmg_structure(cell) for cell in phonon.supercells_with_displacements]


def imaginary_mode_flags(frequencies: np.ndarray, gamma_index: int = 0) -> dict[str, bool]:
    """Matbench Discovery's imaginary-mode rule on frequencies (n_q, n_bands), THz, Γ at ``gamma_index``.

    Any Γ optical mode < 0, any Γ acoustic mode < −0.01 THz, or any mode < 0 at another q-point.
    """
    freqs = np.asarray(frequencies)
    gamma = freqs[gamma_index]  # bands in phonopy's ascending order: the first three are acoustic
    others = np.delete(freqs, gamma_index, axis=0)
    flags = {
        "gamma_optical": bool(np.any(gamma[3:] < 0)),
        "gamma_acoustic": bool(np.any(gamma[:3] < GAMMA_ACOUSTIC_TOLERANCE_THZ)),
        "off_gamma": bool(np.any(others < 0)),
    }
    flags["any"] = any(flags.values()) or bool(np.all(np.isnan(freqs)))
    return flags


@dataclass
class HarmonicProperties:
    """What phonopy computes from the force constants.

    Attributes:
        force_constants: (n_sc, n_sc, 3, 3) or compact (n_prim, n_sc, 3, 3), eV/Å².
        band_qpoints / band_distances / band_frequencies: per path segment: (n, 3) reduced q,
            (n,) distance (1/Å, phonopy's 2π-free convention), (n, n_bands) THz.
        band_labels: labels at segment ends of seekpath's path (:func:`run_band_path`).
        dos_frequencies / dos: total DOS (states/THz per primitive cell) on a frequency grid, THz.
        mesh: q-mesh used for the DOS and thermal properties.
        mesh_frequencies: (n_irr_q, n_bands) THz on the irreducible mesh (Γ-centred, Γ first).
        temperatures: K; free_energy kJ/mol, entropy and heat_capacity J/(K·mol), per primitive cell.
        imaginary: the Matbench Discovery flags on the mesh and band-path frequencies.
        min_frequency: lowest frequency anywhere (mesh or band path), THz.
    """

    force_constants: np.ndarray
    band_qpoints: list[np.ndarray]
    band_distances: list[np.ndarray]
    band_frequencies: list[np.ndarray]
    band_labels: list[str]
    dos_frequencies: np.ndarray
    dos: np.ndarray
    mesh: list[int]
    mesh_frequencies: np.ndarray
    temperatures: np.ndarray
    free_energy: np.ndarray
    entropy: np.ndarray
    heat_capacity: np.ndarray
    imaginary: dict[str, bool] = field(default_factory=dict)
    min_frequency: float = 0.0


def harmonic_properties(
    phonon: Phonopy,
    forces: Sequence[np.ndarray],
    mesh: float | Sequence[int] = 100.0,
    temperatures: Sequence[float] = tuple(range(0, 1001, 10)),
    band_npoints: int = 51,
    symmetrize_fc: bool = True,
) -> HarmonicProperties:
    """Force constants from ``forces`` (eV/Å, one array per displaced supercell) and properties.

    Args:
        phonon: phonopy object with displacements generated (or a dataset set).
        forces: forces on every displaced supercell, in phonopy's displacement order.
        mesh: q-mesh, as phonopy takes it (a length in Å or three integers).
        temperatures: K, for the thermal properties.
        band_npoints: q-points per band-path segment.
        symmetrize_fc: impose the translational (acoustic sum rule) and index-permutation
            symmetry on the force constants (phonopy's ``symmetrize_force_constants``); without
            it small force errors leave Γ acoustic modes at a few −0.01 THz, which the
            imaginary-mode rule would flag.
    """
    phonon.forces = np.asarray(forces)
    phonon.produce_force_constants()
    if symmetrize_fc:
        phonon.symmetrize_force_constants()
    run_band_path(phonon, band_npoints)
    band = phonon.get_band_structure_dict()
    labels = _segment_labels(phonon)
    phonon.run_mesh(mesh, is_gamma_center=True)
    phonon.run_total_dos()
    dos = phonon.get_total_dos_dict()
    # the three Γ acoustic modes are zero up to round-off (~1e-7 THz); left in, their log terms
    # add meV-sized noise to F and S, so they are excluded as phonopy recommends
    phonon.run_thermal_properties(temperatures=list(temperatures), exclude_gamma_acoustic=True)
    tp = phonon.get_thermal_properties_dict()
    mesh_freqs = np.asarray(phonon.mesh.frequencies)
    band_freqs = [np.asarray(f) for f in band["frequencies"]]
    flags = imaginary_mode_flags(mesh_freqs)
    path_negative = bool(
        any(np.any(f[~_is_gamma(q)] < 0) for f, q in zip(band_freqs, band["qpoints"], strict=True))
    )
    flags["off_gamma"] = flags["off_gamma"] or path_negative
    flags["any"] = flags["any"] or path_negative
    return HarmonicProperties(
        force_constants=np.asarray(phonon.force_constants),
        band_qpoints=[np.asarray(q) for q in band["qpoints"]],
        band_distances=[np.asarray(d) for d in band["distances"]],
        band_frequencies=band_freqs,
        band_labels=labels,
        dos_frequencies=np.asarray(dos["frequency_points"]),
        dos=np.asarray(dos["total_dos"]),
        mesh=[int(m) for m in phonon.mesh_numbers],
        mesh_frequencies=mesh_freqs,
        temperatures=np.asarray(tp["temperatures"]),
        free_energy=np.asarray(tp["free_energy"]),
        entropy=np.asarray(tp["entropy"]),
        heat_capacity=np.asarray(tp["heat_capacity"]),
        imaginary=flags,
        min_frequency=float(min(mesh_freqs.min(), *(f.min() for f in band_freqs))),
    )


def run_band_path(phonon: Phonopy, npoints: int = 51) -> None:
    """Phonon bands along seekpath's (HPKOT) path, found at the phonopy object's own symprec.

    phonopy's ``auto_band_structure`` asks seekpath at its fixed 1e-5 tolerance and reads the
    points as if our primitive cell were seekpath's standardized one: a relaxed cell that is
    cubic only to 1e-3 then gets a triclinic path, and a cell in a non-standard setting gets
    points in the wrong basis. ``get_path_orig_cell`` returns the points in our own cell's
    reciprocal basis, at the tolerance that found the displacements.
    """
    import seekpath

    try:
        path = seekpath.get_path_orig_cell(
            phonon.primitive.totuple(), symprec=float(phonon.symmetry.tolerance)
        )
    except Exception as exc:  # seekpath's SymmetryDetectionError is a bare Exception
        raise ValueError(f"no band path: seekpath found no symmetry ({exc})") from exc
    coords = {name: np.asarray(q, dtype=float) for name, q in path["point_coords"].items()}
    steps = np.linspace(0.0, 1.0, npoints)[:, None]
    bands = [coords[a] + (coords[b] - coords[a]) * steps for a, b in path["path"]]
    connections = [
        end == nxt for (_, end), (nxt, _) in zip(path["path"][:-1], path["path"][1:], strict=True)
    ] + [False]
    labels: list[str] = []
    for seg, (start, end) in enumerate(path["path"]):
        if seg == 0 or not connections[seg - 1]:
            labels.append(start)
        labels.append(end)
    phonon.run_band_structure(bands, path_connections=connections, labels=labels)


def _is_gamma(qpoints: np.ndarray) -> np.ndarray:
    """Γ or a reciprocal-lattice vector; seekpath's points of a cell symmetric only to symprec
    sit ~1e-5 off the ideal fractions."""
    q = np.asarray(qpoints)
    return np.all(np.abs(q - np.round(q)) < 1e-5, axis=1)


def _segment_labels(phonon: Phonopy) -> list[str]:
    """Start and end label of every band-path segment (2 per segment), plain text (Γ, X, ...).

    phonopy keeps one label per path point and ``path_connections`` (segment k continues into
    k + 1); we expand them so that plots need not know phonopy's convention.
    """
    bs = phonon.band_structure
    labels = [_plain(x) for x in (bs.labels or [])]
    connections = list(bs.path_connections or [])
    if not labels or not connections:
        return []
    out, k = [], 0
    try:
        for seg in range(len(connections)):
            if seg == 0 or not connections[seg - 1]:  # a new piece of path starts with a label
                start, k = labels[k], k + 1
            else:
                start = out[-1]
            out += [start, labels[k]]
            k += 1
    except IndexError:
        return []  # an unexpected layout: no labels rather than wrong ones
    return out


_GREEK = {"GAMMA": "Γ", "SIGMA": "Σ", "DELTA": "Δ", "LAMBDA": "Λ"}
_SUBSCRIPT = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def _plain(label: str) -> str:
    """seekpath's ``GAMMA``/``X_1`` (or phonopy's ``$\\Gamma$``, in older documents) as Γ, X₁."""
    text = str(label).replace("$", "").replace("\\mathrm{", "").replace("}", "")
    text = text.replace("\\Gamma", "GAMMA")  # seekpath's own "G" is another point (tI2), not Γ
    for name, letter in _GREEK.items():
        text = text.replace(name, letter)
    if "_" in text:
        head, _, sub = text.partition("_")
        text = head + sub.translate(_SUBSCRIPT)
    return text
