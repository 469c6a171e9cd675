"""Candidate structures of a campaign, generated and checked before any compute."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition

from mlipflows.campaign.spec import CampaignSpec, SpecError
from mlipflows.errors import PartlyReadError, StructureReadError
from mlipflows.io import Candidate, expand_paths, number_duplicates, read_structures
from mlipflows.prototypes import get_prototype

log = logging.getLogger(__name__)


def is_charge_balanced(composition: Composition) -> bool:
    """True when pymatgen's oxidation-state guesser finds a neutral assignment.

    The guesser draws on ICSD statistics and allows mixed valence, so it keeps LiMn2O4
    (Mn³⁺/Mn⁴⁺) but also LiS or MgN (S⁻¹ and N⁻² occur in persulfides and diazenides): a
    filter for the impossible, not a judgement of the likely.
    """
    if len(composition.elements) == 1:
        return True
    return bool(composition.oxi_state_guesses(max_sites=-1))


def _from_prototypes(spec: CampaignSpec) -> list[Candidate]:
    out = []
    for space in spec.candidates.prototypes:
        proto = get_prototype(space.prototype)
        labels = proto.labels
        for combo in itertools.product(*(space.sites[label] for label in labels)):
            deco = dict(zip(labels, combo, strict=True))
            s = proto.build(deco)
            sid = f"{s.composition.reduced_formula}-{proto.name}"
            out.append(Candidate(sid, s, f"prototype {proto.name} {deco}"))
    return out


def _from_files(spec: CampaignSpec, strict: bool) -> tuple[list[Candidate], dict[str, str]]:
    """Candidates from the spec's files, folders and globs, and ``{path: reason}`` of unreadable ones."""
    out: list[Candidate] = []
    unreadable: dict[str, str] = {}
    for k, src in enumerate(spec.candidates.structures):
        paths = expand_paths(src.file, spec.base_dir)
        if not paths:
            raise SpecError(f"candidates.structures.{k}.file: {src.file!r} matches no structure file")
        for path in paths:
            try:
                loaded = read_structures(path)
            except PartlyReadError as exc:
                if strict:
                    raise SpecError(f"candidates.structures.{k}.file: {exc}") from None
                unreadable.update(exc.frames)
                loaded = exc.candidates
            except StructureReadError as exc:
                if strict or (len(paths) == 1 and not path.exists()):
                    raise SpecError(f"candidates.structures.{k}.file: {exc}") from None
                unreadable[str(path)] = str(exc)
                continue
            for item in loaded:
                out.extend(_with_substitutions(item, src.substitutions, k, path, single=len(paths) == 1))
    return out, unreadable


def _with_substitutions(
    item: Candidate, substitutions: dict[str, list[str]], k: int, path: Path, single: bool
) -> list[Candidate]:
    """The structure itself and one candidate per combination of its substitutions."""
    out = [Candidate(item.structure_id, item.structure, str(path))]
    present = {el.symbol for el in item.structure.composition.elements}
    subs = {el: opts for el, opts in substitutions.items() if el in present}
    if substitutions and not subs:
        if single:  # one file named on purpose: a substitution that never applies is a typo
            raise SpecError(
                f"candidates.structures.{k}.substitutions: none of {sorted(substitutions)} "
                f"occurs in {path} ({item.structure.composition.reduced_formula})"
            )
        return out
    keys = sorted(subs)
    for choice in itertools.product(*(subs[el] for el in keys)):
        mapping = {el: new for el, new in zip(keys, choice, strict=True) if el != new}
        if not mapping:
            continue
        s = item.structure.copy()
        s.replace_species(mapping)
        tag = ",".join(f"{a}>{b}" for a, b in mapping.items())
        out.append(Candidate(f"{item.structure_id}[{tag}]", s, f"{path} with {tag}"))
    return out


def deduplicate(candidates: list[Candidate]) -> list[Candidate]:
    """Drop candidates that StructureMatcher finds equivalent to an earlier one."""
    matcher = StructureMatcher()
    kept: list[Candidate] = []
    by_formula: dict[str, list[Candidate]] = {}
    for c in candidates:
        same = by_formula.setdefault(c.structure.composition.reduced_formula, [])
        if any(matcher.fit(c.structure, other.structure) for other in same):
            log.info("dropping %s: duplicate structure", c.structure_id)
            continue
        same.append(c)
        kept.append(c)
    return kept


@dataclass
class CandidatePool:
    """What a spec generates: the candidates, and the files that could not be read (path → reason)."""

    candidates: list[Candidate]
    unreadable: dict[str, str] = field(default_factory=dict)


def generate_candidates(spec: CampaignSpec, strict: bool = False) -> CandidatePool:
    """All candidates of the spec: generated, charge-filtered, deduplicated, ids made unique.

    An unreadable file among many (a folder or a glob) is listed in ``unreadable`` and the
    rest go on; ``strict`` makes it an error, as a single missing file always is.

    Raises:
        SpecError: an empty candidate space after filtering, a missing file, too many candidates.
    """
    from_files, unreadable = _from_files(spec, strict)
    candidates = _from_prototypes(spec) + from_files
    if len(candidates) > spec.max_candidates:
        raise SpecError(
            f"{len(candidates)} candidates exceed max_candidates={spec.max_candidates}; "
            "raise it in the spec if this is intended"
        )
    if spec.candidates.charge_balance:
        before = len(candidates)
        candidates = [c for c in candidates if is_charge_balanced(c.structure.composition)]
        if not candidates and not unreadable:
            raise SpecError(f"charge_balance removed all {before} candidates; no neutral compositions")
    return CandidatePool(number_duplicates(deduplicate(candidates)), unreadable)
