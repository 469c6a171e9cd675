"""Read structures from files, one error per bad file (the others still load)."""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Structure

from mlipflows.errors import PartlyReadError, StructureReadError

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
    size = path.stat().st_size
    if size == 0 or (size < 4096 and not path.read_bytes().strip()):  # (a big file is not blank)
        raise StructureReadError(f"{path}: the file is empty")
    try:
        if path.suffix.lower() in EXTXYZ_SUFFIXES:
            return _read_extxyz(path)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            cif = path.suffix.lower() == ".cif"
            structures = _read_cif(path) if cif else [Structure.from_file(path)]
        if any("Elements in POSCAR cannot be determined" in str(w.message) for w in caught):
            structures = [_vasp4_species(path, structures[0])]
    except StructureReadError:
        raise
    except Exception as exc:
        if path.suffix.lower() == ".json":  # pymatgen reads one Structure.as_dict() per file
            raise StructureReadError(
                f"{path}: not a structure JSON (a pymatgen Structure.as_dict()); results JSON and "
                "other documents are not inputs (export structures with results --export-structures)"
            ) from exc
        raise StructureReadError(f"{path}: not a readable structure file ({exc})") from exc
    if not structures:
        raise StructureReadError(f"{path}: file contains no structure")
    disordered = [s for s in structures if not s.is_ordered]
    if disordered:
        from mlipflows.engine.validate import disorder_reason

        raise StructureReadError(f"{path}: {disorder_reason(disordered[0])}")
    if len(structures) == 1:
        return [Candidate(file_id(path), structures[0], str(path))]
    return [Candidate(f"{file_id(path)}-{k}", s, str(path)) for k, s in enumerate(structures)]


def _vasp4_species(path: Path, placeholder: Structure) -> Structure:
    """A POSCAR without VASP 5's species line: pymatgen names its elements H, He, … (a
    placeholder, never to be computed). VASP 4 files carry the symbols on the comment line, as
    ASE reads them; anything else is refused, naming the fix."""
    from pymatgen.core import Element

    lines = path.read_text().splitlines()
    counts = lines[5].split() if len(lines) > 5 else []
    words = lines[0].split() if lines else []
    if counts and len(words) >= len(counts) and all(Element.is_valid_symbol(w) for w in words[: len(counts)]):
        names = iter(words[: len(counts)])
        mapping: dict[str, str] = {}
        for site in placeholder:  # pymatgen's placeholders follow the counts' order
            if site.specie.symbol not in mapping:
                mapping[site.specie.symbol] = next(names)
        return placeholder.copy().replace_species(mapping)
    raise StructureReadError(
        f"{path}: a VASP 4 POSCAR without element symbols (no species line, and the comment line "
        "does not name them): add the VASP 5 species line above the counts, e.g. 'Na Cl'"
    )


def _read_cif(path: Path) -> list[Structure]:
    """pymatgen's CIF reader, its failures said in CIF terms rather than its internals."""
    from pymatgen.io.cif import CifParser

    try:
        parser = CifParser(path)
    except ValueError as exc:
        if "zip()" in str(exc):  # a loop_ whose rows hold more or fewer values than its headers
            raise StructureReadError(
                f"{path}: malformed CIF: a loop_ row has a different number of values than the "
                "loop has columns (a missing coordinate or a stray value?)"
            ) from exc
        raise
    try:
        return parser.parse_structures(primitive=False)
    except ValueError as exc:
        reasons = [w.split("\n", 1)[-1].strip() for w in parser.warnings if "No structure parsed" in w]
        overfull = [m for r in reasons if (m := re.match(r"Occupancy ([\d.]+) exceeded", r))]
        if overfull:
            raise StructureReadError(
                f"{path}: no structure: atoms overlap on one site (their occupancies sum to "
                f"{overfull[0][1]}); remove the duplicate atom, or give the shared site partial "
                "occupancies"
            ) from exc
        if reasons:
            raise StructureReadError(f"{path}: no structure: {'; '.join(reasons)}") from exc
        raise


def _read_extxyz(path: Path) -> list[Candidate]:
    from ase import Atoms
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = read(path, index=":", format="extxyz")
    if not frames:
        raise StructureReadError(f"{path}: file contains no structure")
    out = []
    bad: dict[str, str] = {}
    for k, atoms in enumerate(frames):
        if not atoms.pbc.all():
            bad[f"{path} frame {k}"] = (
                f"{path} frame {k}: not fully periodic (pbc={atoms.pbc.tolist()}): mlipflows computes "
                "crystals; put a molecule or slab in a cell with pbc=True and enough vacuum (more "
                "than the model's cutoff)"
            )
            continue
        sid = atoms.info.get("structure_id") or (
            file_id(path) if len(frames) == 1 else f"{file_id(path)}-{k}"
        )
        # only the structure: a frame's info (an export's result fields, dotted keys) and
        # labels would ride along as Structure.properties into every job output
        bare = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        out.append(Candidate(str(sid), AseAtomsAdaptor.get_structure(bare), str(path)))
    if bad and not out:
        raise StructureReadError(next(iter(bad.values())) + f" (and every other of its {len(frames)} frames)")
    if bad:
        raise PartlyReadError(f"{path}: {len(bad)} of {len(frames)} frames unusable", out, bad)
    return out


def _subfolder_hint(folder: Path) -> str:
    """Where the structures are when they sit one level down (a folder per calculation): a
    glob to pass. Folders are not searched recursively on purpose: a calculation folder holds
    its POSCAR and CONTCAR, and both would be read."""
    names = sorted({f.name for d in folder.iterdir() if d.is_dir() for f in expand_paths(d)})
    if not names:
        return ""
    example = "CONTCAR" if "CONTCAR" in names else names[0]
    return (
        f"; its subfolders do (folders are not searched recursively): pass a glob such as "
        f"'{folder}/*/{example}'"
    )


def read_many(paths: list[str | Path]) -> tuple[list[Candidate], dict[str, str]]:
    """Read every file once (a folder: the structure files in it; a quoted glob: its matches,
    ``**`` recursing); return the structures (ids unique) and ``{path: reason}`` for files that
    failed."""
    loaded: list[Candidate] = []
    failed: dict[str, str] = {}
    seen: set[Path] = set()
    files: list[str | Path] = []
    for p in paths:  # a folder stands for the structure files in it, as in a campaign spec
        if not Path(p).exists() and any(ch in str(p) for ch in "*?["):  # a quoted glob
            found = expand_paths(p)
            files.extend(found)
            if not found:
                failed[str(p)] = f"{p}: the pattern matches no file"
        elif Path(p).is_dir():
            found = expand_paths(p)
            files.extend(found)
            if not found:
                failed[str(p)] = f"{p}: folder holds no structure file (CIF, POSCAR, CONTCAR, *.vasp, extxyz)"
                failed[str(p)] += _subfolder_hint(Path(p))
        else:
            files.append(p)
    for p in files:
        if Path(p).resolve() in seen:  # the same file named twice (a folder and a name)
            continue
        seen.add(Path(p).resolve())
        try:
            loaded.extend(read_structures(p))
        except PartlyReadError as exc:  # the good frames go on
            loaded.extend(exc.candidates)
            failed.update(exc.frames)
        except StructureReadError as exc:
            failed[str(p)] = str(exc)
    return unique_ids(loaded), failed


def file_id(path: Path) -> str:
    """A file's structure id: its stem, and for VASP's fixed names (POSCAR, CONTCAR) its folder
    too ("Si/POSCAR"), since one such file per folder is VASP's layout."""
    if path.name.upper().startswith(VASP_NAMES) and path.resolve().parent.name:
        return f"{path.resolve().parent.name}/{path.stem}"
    return path.stem


def unique_ids(candidates: list[Candidate]) -> list[Candidate]:
    """Qualify ids that files in different folders share with the folders that tell them apart
    ("a/x", "b/x"): one id per structure, or a result would silently replace another's."""
    groups: dict[str, list[Candidate]] = {}
    for c in candidates:
        groups.setdefault(c.structure_id, []).append(c)
    for sid, group in groups.items():
        if len(group) < 2:
            continue
        bases = [_id_base(c) for c in group]
        common = Path(os.path.commonpath(bases))
        for c, base in zip(group, bases, strict=True):
            prefix = base.relative_to(common).as_posix()
            c.structure_id = sid if prefix == "." else f"{prefix}/{sid}"
    # still shared: same folder and stem ("x.cif", "x.vasp"), or ids set inside the files
    return number_duplicates(candidates)


def number_duplicates(candidates: list[Candidate]) -> list[Candidate]:
    """A repeated id gets "-1", "-2", … (skipping ids already taken), in order."""
    taken: set[str] = set()
    for c in candidates:
        sid, n = c.structure_id, 1
        while c.structure_id in taken:
            c.structure_id, n = f"{sid}-{n}", n + 1
        taken.add(c.structure_id)
    return candidates


def _id_base(c: Candidate) -> Path:
    """The folder an id is relative to (for "Si/POSCAR", the folder above Si)."""
    folder = Path(c.source).resolve().parent
    return folder.parent if c.structure_id.startswith(f"{folder.name}/") else folder
