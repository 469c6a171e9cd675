"""Read structures from files, one error per bad file (the others still load)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure

from mlipflows.errors import StructureReadError

EXTXYZ_SUFFIXES = {".xyz", ".extxyz"}
# what a folder of structures holds (VASP files are named POSCAR, CONTCAR, *.vasp, *.poscar)
STRUCTURE_SUFFIXES = {".cif", ".vasp", ".poscar", ".mcif", *EXTXYZ_SUFFIXES}
VASP_NAMES = ("POSCAR", "CONTCAR")


def expand_paths(pattern: str | Path, base: Path | None = None) -> list[Path]:
    """The structure files a path, folder or glob names, sorted.

    A folder gives the files directly in it that look like structures (CIF, POSCAR/CONTCAR,
    *.vasp, *.poscar, extxyz); a pattern with ``*``, ``?`` or ``[`` is a glob (``**`` recurses);
    anything else is one file, returned even when it does not exist (the reader says so).
    Relative paths are taken from ``base``.
    """
    import glob

    path = Path(pattern).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if any(ch in str(pattern) for ch in "*?["):
        return sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if path.is_dir():
        return sorted(
            p
            for p in path.iterdir()
            if p.is_file() and (p.suffix.lower() in STRUCTURE_SUFFIXES or p.name.startswith(VASP_NAMES))
        )
    return [path]


@dataclass
class Candidate:
    """A structure with a stable id and where it came from (a file, a prototype, a generator).

    Files give the stem as id, plus a frame number for multi-frame files.
    """

    structure_id: str
    structure: Structure
    source: str


def read_structures(path: str | Path) -> list[Candidate]:
    """All structures in one CIF / POSCAR / extxyz file (pymatgen or ASE reader).

    Raises:
        StructureReadError: the file is missing, empty, or not a structure file we can parse.
    """
    path = Path(path)
    if not path.is_file():
        raise StructureReadError(f"{path}: no such file")
    try:
        if path.suffix.lower() in EXTXYZ_SUFFIXES:
            return _read_extxyz(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if path.suffix.lower() == ".cif":
                from pymatgen.io.cif import CifParser

                structures = CifParser(path).parse_structures(primitive=False)
            else:
                structures = [Structure.from_file(path)]
    except StructureReadError:
        raise
    except Exception as exc:
        raise StructureReadError(f"{path}: not a readable structure file ({exc})") from exc
    if not structures:
        raise StructureReadError(f"{path}: file contains no structure")
    if len(structures) == 1:
        return [Candidate(path.stem, structures[0], str(path))]
    return [Candidate(f"{path.stem}-{k}", s, str(path)) for k, s in enumerate(structures)]


def _read_extxyz(path: Path) -> list[Candidate]:
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = read(path, index=":", format="extxyz")
    if not frames:
        raise StructureReadError(f"{path}: file contains no structure")
    out = []
    for k, atoms in enumerate(frames):
        if not atoms.pbc.all():
            raise StructureReadError(f"{path} frame {k}: not fully periodic (pbc={atoms.pbc})")
        sid = atoms.info.get("structure_id") or (path.stem if len(frames) == 1 else f"{path.stem}-{k}")
        out.append(Candidate(str(sid), AseAtomsAdaptor.get_structure(atoms), str(path)))
    return out


def read_many(paths: list[str | Path]) -> tuple[list[Candidate], dict[str, str]]:
    """Read every file; return the structures and ``{path: reason}`` for files that failed."""
    loaded: list[Candidate] = []
    failed: dict[str, str] = {}
    for p in paths:
        try:
            loaded.extend(read_structures(p))
        except StructureReadError as exc:
            failed[str(p)] = str(exc)
    return loaded, failed
