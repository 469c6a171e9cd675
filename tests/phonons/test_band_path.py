"""The band path follows the crystal's symmetry at our symprec, in our cell's own basis.

Only the path's geometry is checked (where its labelled points lie in reciprocal space), so the
force constants are zeros: no model is needed.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Lattice, Structure

from mlipflows.phonons.harmonic import _segment_labels, make_phonopy, run_band_path


def _labelled_points(
    structure: Structure, symprec: float, primitive_matrix: str | np.ndarray = "auto"
) -> tuple[dict[str, np.ndarray], list[tuple[str, str]]]:
    """Cartesian position (1/Å, phonopy's 2π-free convention) of every labelled path end, and
    the segments in path order."""
    phonon = make_phonopy(structure, np.eye(3, dtype=int), primitive_matrix, symprec=symprec)
    n = len(phonon.supercell)
    phonon.force_constants = np.zeros((n, n, 3, 3))
    run_band_path(phonon, npoints=5)
    band = phonon.get_band_structure_dict()
    labels = _segment_labels(phonon)
    reciprocal = np.linalg.inv(phonon.primitive.cell).T
    points: dict[str, np.ndarray] = {}
    for seg, q in enumerate(band["qpoints"]):
        for label, end in zip(labels[2 * seg : 2 * seg + 2], (q[0], q[-1]), strict=True):
            cart = np.asarray(end) @ reciprocal
            if label in points:  # one label, one point, wherever the path passes it
                np.testing.assert_allclose(points[label], cart, atol=1e-9)
            points[label] = cart
    return points, list(zip(labels[::2], labels[1::2], strict=True))


def test_a_cell_cubic_only_to_symprec_gets_the_fcc_path():
    a = 5.43
    si = Structure(Lattice.cubic(a), ["Si"] * 8, [
        [0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0],
        [0.25, 0.25, 0.25], [0.25, 0.75, 0.75], [0.75, 0.25, 0.75], [0.75, 0.75, 0.25],
    ])  # fmt: skip
    noise = np.random.default_rng(0).normal(scale=1e-4, size=(len(si), 3))
    for i, d in enumerate(noise):
        si.translate_sites([i], d, frac_coords=False)
    # at 1e-5 (phonopy's auto_band_structure) this is P1 and gets a triclinic path
    points, segments = _labelled_points(si, symprec=1e-3)
    assert segments == [("Γ", "X"), ("X", "U"), ("K", "Γ"), ("Γ", "L"), ("L", "W"), ("W", "X")]
    assert np.linalg.norm(points["Γ"]) < 1e-9
    np.testing.assert_allclose(np.linalg.norm(points["X"]), 1 / a, rtol=1e-3)
    np.testing.assert_allclose(np.linalg.norm(points["L"]), np.sqrt(3) / (2 * a), rtol=1e-3)


def test_a_hexagonal_cell_with_c_first_gets_points_in_its_own_basis():
    """phonopy's ``auto`` primitive is seekpath's setting; a cell kept as it is by a given
    primitive matrix (here the identity) is not, and the points must be read in its basis."""
    a, c = 3.25, 5.21
    standard = Lattice.hexagonal(a, c).matrix
    lattice = standard[[2, 0, 1]]  # c is the first vector: not seekpath's standard setting
    zno = Structure(
        lattice,
        ["Zn", "Zn", "O", "O"],
        [[0, 1 / 3, 2 / 3], [0.5, 2 / 3, 1 / 3], [0.382, 1 / 3, 2 / 3], [0.882, 2 / 3, 1 / 3]],
    )
    points, _ = _labelled_points(zno, symprec=1e-3, primitive_matrix=np.eye(3))
    assert {"Γ", "M", "K", "A", "L", "H"} <= set(points)
    c_axis = lattice[0] / np.linalg.norm(lattice[0])
    # A lies on the c axis at 1/(2c); M and K lie in the basal plane
    np.testing.assert_allclose(np.abs(points["A"] @ c_axis), 1 / (2 * c), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(points["A"]), 1 / (2 * c), rtol=1e-6)
    for name, length in (("M", 1 / (np.sqrt(3) * a)), ("K", 2 / (3 * a))):
        assert abs(points[name] @ c_axis) < 1e-9
        np.testing.assert_allclose(np.linalg.norm(points[name]), length, rtol=1e-6)


def test_seekpaths_g_point_of_body_centred_tetragonal_is_not_gamma():
    """tI2 (c > a) has a point seekpath calls G, (½, ½, −ζ); only its GAMMA is Γ."""
    bct = Structure(Lattice.tetragonal(3.0, 5.0), ["Si", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    points, segments = _labelled_points(bct, symprec=1e-3)
    assert ("G", "M") in segments and "S₀" in points
    assert np.linalg.norm(points["G"]) > 0.1 and np.linalg.norm(points["Γ"]) < 1e-9
