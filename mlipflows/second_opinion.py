"""A second model's opinion on the finalists: where two MLIPs disagree, neither is trusted blindly.

The finalists of a ranking (the lowest polymorphs) or of a campaign (the most stable
candidates) are relaxed again with model B, starting from model A's geometries, in one batched
run. For a ranking the energies relative to the lowest finalist are compared; for a campaign
the formation energies, each against its own model's elemental references
(:func:`mlipflows.engine.sanity.elemental_energies`). A finalist whose two values differ by
more than the threshold is flagged; so is one that model B finds unphysical or cannot relax.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monty.json import MSONable
from pymatgen.core import Structure

from mlipflows.engine import RelaxSettings, relax
from mlipflows.engine.sanity import elemental_energies, reference_energy
from mlipflows.potentials import Potential, load_potential
from mlipflows.schemas.opinion import Opinion


@dataclass(frozen=True)
class SecondOpinion(MSONable):
    """Which model gives the second opinion, on how many finalists, and when they disagree.

    Attributes:
        model: model spec of model B.
        top: how many finalists (lowest first).
        threshold: disagreement that is flagged, eV/atom (of relative or formation energies).
        fmax / max_steps: model B's relaxation from model A's geometry.
    """

    model: str
    top: int = 10
    threshold: float = 0.05
    fmax: float = 0.05
    max_steps: int = 300


def _relax_b(structures: Sequence[Structure], opinion: SecondOpinion, device: str) -> tuple[Potential, list]:
    pot = load_potential(opinion.model, device=device)
    settings = RelaxSettings(fmax=opinion.fmax, max_steps=opinion.max_steps)
    return pot, relax(list(structures), pot, settings)


def _opinions(
    ids: Sequence[str],
    values_a: Sequence[float],
    values_b: Sequence[float | None],
    results: list,
    threshold: float,
) -> list[Opinion]:
    out = []
    for sid, a, b, r in zip(ids, values_a, values_b, results, strict=True):
        diff = None if b is None else b - a
        out.append(
            Opinion(
                structure_id=sid,
                value_a=a,
                value_b=b,
                difference=diff,
                disagrees=diff is None or abs(diff) > threshold,
                state_b=r.state,
                error_b=r.reason,
            )
        )
    return out


def ranking_opinions(
    ids: Sequence[str],
    structures: Sequence[Structure],
    energies_a: Sequence[float],
    opinion: SecondOpinion,
    device: str = "cpu",
) -> list[Opinion]:
    """Energies (eV/atom) relative to the lowest finalist, by model A and by model B."""
    _, results = _relax_b(structures, opinion, device)
    e_b = [r.energy / len(r.structure) if r.ok else None for r in results]
    known = [e for e in e_b if e is not None]
    low_a, low_b = min(energies_a), (min(known) if known else None)
    rel_a = [e - low_a for e in energies_a]
    rel_b = [None if e is None or low_b is None else e - low_b for e in e_b]
    return _opinions(ids, rel_a, rel_b, results, opinion.threshold)


def formation_opinions(
    ids: Sequence[str],
    structures: Sequence[Structure],
    formation_a: Sequence[float],
    opinion: SecondOpinion,
    device: str = "cpu",
) -> list[Opinion]:
    """Formation energies (eV/atom), each against its own model's elemental references."""
    pot, results = _relax_b(structures, opinion, device)
    elements = {el.symbol for s in structures for el in s.composition.elements}
    mu_b = elemental_energies(pot, elements)
    form_b: list[float | None] = []
    for r in results:
        ref = reference_energy(r.structure.composition, mu_b) if r.ok else None
        form_b.append(None if ref is None else r.energy / len(r.structure) - ref)
    return _opinions(ids, formation_a, form_b, results, opinion.threshold)
