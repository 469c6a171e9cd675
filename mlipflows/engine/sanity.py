"""Physical sanity checks on every engine result: model holes are caught, never trusted.

Universal MLIPs have holes: regions where the energy falls without bound (two atoms pushed
together, a cell squeezed). A result from a hole looks like a very stable structure, so
left alone it becomes an elemental reference, poisons a whole chemistry's hull or tops a
ranking. Every relaxation and static result passes these checks; one that fails gets the
state ``unphysical`` with the reason (its data are kept), and hulls, rankings, stage
selections and benchmark metrics leave it out.

The checks, with their thresholds (:class:`SanityLimits`):

- **close contact**: two atoms closer than ``contact_factor`` (0.5) × the sum of their
  covalent radii (Cordero et al. 2008, via ASE). Over 6,251 known crystals (the 972 WBM
  structures, 1,211 + 3,953 MP elastic structures, 103 phononDB materials, our examples) the
  closest pair is at 0.62 × (actinide metal–metal bonds); ordinary bonds are at 0.8–1.1 ×.
- **energy below the elements**: a formation energy, against the *model's own* elemental
  references (:func:`elemental_energies`), below ``min_formation_energy`` (−5 eV/atom). No
  known compound is below about −4.5 eV/atom (the most stable fluorides and oxides).
- **energy above the elements after a relaxation**: a relaxed structure more than
  ``max_formation_energy`` (+10 eV/atom) above its elements did not find a minimum. The
  limit is above the largest cohesive energy (W, 8.9 eV/atom), so an isolated atom or a
  molecule in a box passes.
- **exploding forces**: a force above ``max_force`` (1,000 eV/Å; forces in a physical
  relaxation are ~0.01–10 eV/Å). During a relaxation the first ``grace_steps`` (20) steps are
  exempt: a close-contact start legitimately pushes hard at first.
- **collapsing cell**: the relaxation's existing check (``RelaxSettings.min_volume_per_atom``
  and ``min_volume_fraction``); such results are unphysical too.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ase.data import covalent_radii
from monty.json import MSONable
from pymatgen.core import Composition, Structure
from vesin import NeighborList

from mlipflows.home import mlipflows_home
from mlipflows.potentials.base import Potential

log = logging.getLogger(__name__)

UNPHYSICAL = "unphysical"
_MAX_RADIUS = float(np.max(covalent_radii[1:]))


@dataclass(frozen=True)
class SanityLimits(MSONable):
    """Thresholds of the sanity checks (see the module docstring for why these values).

    Attributes:
        contact_factor: a pair closer than this × (R_cov,i + R_cov,j) is a close contact.
        min_formation_energy: eV/atom vs the model's elemental references; below = a hole.
        max_formation_energy: eV/atom; a *relaxed* structure above it did not relax.
        max_force: eV/Å; any force above it has exploded.
        grace_steps: relaxation steps before ``max_force`` applies.
    """

    contact_factor: float = 0.5
    min_formation_energy: float = -5.0
    max_formation_energy: float = 10.0
    max_force: float = 1000.0
    grace_steps: int = 20


def close_contact(structure: Structure, factor: float) -> str | None:
    """The closest pair below ``factor`` × the sum of covalent radii, as a reason (None = fine)."""
    z = np.asarray(structure.atomic_numbers)
    cutoff = factor * 2 * float(covalent_radii[z].max())
    if cutoff <= 0 or len(z) == 0:
        return None
    nl = NeighborList(cutoff=cutoff, full_list=False)
    i, j, d = nl.compute(structure.cart_coords, structure.lattice.matrix, True, quantities="ijd")
    if not len(d):
        return None
    ratio = d / (covalent_radii[z[i]] + covalent_radii[z[j]])
    k = int(np.argmin(ratio))
    if ratio[k] >= factor:
        return None
    a, b = structure[int(i[k])].specie.symbol, structure[int(j[k])].specie.symbol
    return (
        f"atoms {int(i[k])} ({a}) and {int(j[k])} ({b}) are {d[k]:.2f} Å apart, {ratio[k]:.2f} × "
        f"their covalent radii (limit {factor}): the model pushed them together (a hole in its "
        "energy surface); check the input, or use the model with +zbl"
    )


def reference_energy(composition: Composition, mu: Mapping[str, float]) -> float | None:
    """Σ x_i μ_i, eV/atom (None when an element has no reference)."""
    total = composition.num_atoms
    try:
        return sum(amt * mu[el.symbol] for el, amt in composition.items()) / total
    except KeyError:
        return None


def energy_reason(
    energy_per_atom: float,
    composition: Composition,
    mu: Mapping[str, float],
    limits: SanityLimits,
    relaxed: bool,
) -> str | None:
    """Why this energy is not physical for ``composition`` (None = fine or no references)."""
    ref = reference_energy(composition, mu)
    if ref is None:
        return None
    formation = energy_per_atom - ref
    if formation < limits.min_formation_energy:
        return (
            f"energy {energy_per_atom:.4g} eV/atom is {-formation:.3g} eV/atom below the model's own "
            f"elemental references (limit {-limits.min_formation_energy:g}; no known compound is "
            "below ~4.5): a hole in the model's energy surface; check the input, or use +zbl"
        )
    if relaxed and formation > limits.max_formation_energy:
        return (
            f"relaxed energy {energy_per_atom:.4g} eV/atom stays {formation:.3g} eV/atom above the "
            f"model's elemental references (limit {limits.max_formation_energy:g}): the relaxation "
            "did not find a minimum"
        )
    return None


def force_reason(max_force: float | None, limits: SanityLimits) -> str | None:
    if max_force is None or max_force <= limits.max_force:
        return None
    return (
        f"largest force {max_force:.3g} eV/Å (limit {limits.max_force:g}): the forces exploded, "
        "a hole in the model's energy surface"
    )


def check_final(
    structure: Structure,
    energy: float | None,
    max_force: float | None,
    mu: Mapping[str, float],
    limits: SanityLimits,
    relaxed: bool,
) -> str | None:
    """Every check on a finished result; the first reason found (None = physical)."""
    if energy is not None and np.isfinite(energy):
        reason = energy_reason(energy / len(structure), structure.composition, mu, limits, relaxed)
        if reason:
            return reason
    return force_reason(max_force, limits) or close_contact(structure, limits.contact_factor)


# ---- the model's own elemental references -------------------------------------------------

_CACHE: dict[str, dict[str, float | None]] = {}
_LOCK = threading.Lock()


def _cache_file(key: str):
    safe = key.replace(":", "_").replace("/", "_")[:80]
    return mlipflows_home() / "cache" / "elemental-energies" / f"{safe}.json"


def _key(potential: Potential) -> str:
    return f"{potential.card.checksum}-{str(potential.dtype).removeprefix('torch.')}"


def elemental_energies(potential: Potential, elements: Iterable[str]) -> dict[str, float]:
    """The model's own energy per atom of each element's lowest reference structure, eV/atom.

    References are fcc, bcc, hcp and diamond (dimers in a box for H, N, O, F, Cl, Br, I),
    relaxed with the model (≤ 150 FIRE steps, fmax 0.05 eV/Å) and cached per model checksum
    in memory and under ``$MLIPFLOWS_HOME/cache``. References that are themselves unphysical
    (a close contact) are ignored; an element with none is left out (no energy check).
    """
    from mlipflows.elements import elemental_references
    from mlipflows.engine.relax import RelaxSettings, relax

    key = _key(potential)
    wanted = sorted(set(elements))
    with _LOCK:
        known = _CACHE.setdefault(key, _read_cache(key))
        missing = [el for el in wanted if el not in known and not potential.unsupported_elements({el})]
        if missing:
            bulk, dimers = elemental_references(set(missing))
            found: dict[str, float | None] = dict.fromkeys(missing)
            settings = RelaxSettings(fmax=0.05, max_steps=150, sanity=None)
            fixed = RelaxSettings(fmax=0.05, max_steps=150, cell_filter="fixed", sanity=None)
            for group, how in ((bulk, settings), (dimers, fixed)):
                if not group:
                    continue
                try:
                    relaxed = relax([c.structure for c in group], potential, how)
                except Exception as exc:  # a model that raises on every reference: no energy check
                    log.warning("elemental references of %s failed (%s): no energy check", missing, exc)
                    continue
                for cand, r in zip(group, relaxed, strict=True):
                    if r.error or r.energy is None or not np.isfinite(r.energy):
                        continue
                    if close_contact(r.structure, SanityLimits().contact_factor):
                        continue
                    el = cand.structure.composition.elements[0].symbol
                    e = r.energy / len(r.structure)
                    found[el] = e if found[el] is None else min(found[el], e)  # type: ignore[type-var]
            known.update(found)
            _write_cache(key, known)
            log.info("elemental references of %s: %s", potential.name, found)
        return {el: known[el] for el in wanted if known.get(el) is not None}  # type: ignore[misc]


def clear_elemental_cache() -> None:
    """Forget the elemental energies held in memory (the disk cache stays)."""
    with _LOCK:
        _CACHE.clear()


def _read_cache(key: str) -> dict[str, float | None]:
    try:
        return json.loads(_cache_file(key).read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(key: str, values: dict[str, float | None]) -> None:
    path = _cache_file(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(values, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError as exc:  # a read-only home only costs a recomputation next time
        log.debug("cannot cache elemental energies at %s: %s", path, exc)


def floors(structures: Sequence[Structure], mu: Mapping[str, float], limits: SanityLimits) -> list[float]:
    """Per structure, the energy per atom below which it is in a hole (−inf: no references)."""
    out = []
    for s in structures:
        ref = reference_energy(s.composition, mu)
        out.append(-np.inf if ref is None else ref + limits.min_formation_energy)
    return out


class SanityGuard:
    """The checks of one engine call: elemental references looked up once, then per result.

    ``during`` stops a relaxation as soon as it falls into a hole (below its elements or with
    exploding forces) instead of running it to ``max_steps``; ``final`` checks a finished one.
    """

    def __init__(self, potential: Potential, structures: Sequence[Structure], limits: SanityLimits) -> None:
        elements = {el.symbol for s in structures for el in s.composition.elements}
        self.limits = limits
        self.mu = elemental_energies(potential, elements)
        self._floor = floors(structures, self.mu, limits)

    def during(
        self, index: int, structure: Structure, energy: float, max_force: float, step: int
    ) -> str | None:
        """Why relaxation ``index`` must stop now (None = go on); ``structure`` is its input."""
        n = len(structure)
        if energy / n < self._floor[index]:
            return energy_reason(energy / n, structure.composition, self.mu, self.limits, relaxed=False)
        if step >= self.limits.grace_steps:
            return force_reason(max_force, self.limits)
        return None

    def final(
        self, structure: Structure, energy: float | None, max_force: float | None, relaxed: bool
    ) -> str | None:
        return check_final(structure, energy, max_force, self.mu, self.limits, relaxed)
