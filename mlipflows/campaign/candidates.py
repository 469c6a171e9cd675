"""Candidate structures of a campaign, generated and checked before any compute."""

from __future__ import annotations

import itertools
import logging

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition

from mlipflows.campaign.spec import CampaignSpec, SpecError
from mlipflows.errors import StructureReadError
from mlipflows.io import Candidate, read_structures
from mlipflows.prototypes import get_prototype

log = logging.getLogger(__name__)


def is_charge_balanced(composition: Composition) -> bool:
    """True when pymatgen finds a neutral assignment of common oxidation states."""
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


def _from_files(spec: CampaignSpec) -> list[Candidate]:
    out = []
    for k, src in enumerate(spec.candidates.structures):
        path = spec.resolve(src.file)
        try:
            loaded = read_structures(path)
        except StructureReadError as exc:
            raise SpecError(f"candidates.structures.{k}.file: {exc}") from None
        for item in loaded:
            out.append(Candidate(item.structure_id, item.structure, str(path)))
            present = {el.symbol for el in item.structure.composition.elements}
            subs = {el: opts for el, opts in src.substitutions.items() if el in present}
            if src.substitutions and not subs:
                raise SpecError(
                    f"candidates.structures.{k}.substitutions: none of {sorted(src.substitutions)} "
                    f"occurs in {path} ({item.structure.composition.reduced_formula})"
                )
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


def generate_candidates(spec: CampaignSpec) -> list[Candidate]:
    """All candidates of the spec: generated, charge-filtered, deduplicated, ids made unique.

    Raises:
        SpecError: an empty candidate space after filtering, unreadable files, too many candidates.
    """
    candidates = _from_prototypes(spec) + _from_files(spec)
    if len(candidates) > spec.max_candidates:
        raise SpecError(
            f"{len(candidates)} candidates exceed max_candidates={spec.max_candidates}; "
            "raise it in the spec if this is intended"
        )
    if spec.candidates.charge_balance:
        before = len(candidates)
        candidates = [c for c in candidates if is_charge_balanced(c.structure.composition)]
        if not candidates:
            raise SpecError(f"charge_balance removed all {before} candidates; no neutral compositions")
    candidates = deduplicate(candidates)
    seen: dict[str, int] = {}
    for c in candidates:
        n = seen.get(c.structure_id, 0)
        seen[c.structure_id] = n + 1
        if n:
            c.structure_id = f"{c.structure_id}-{n}"
    return candidates
