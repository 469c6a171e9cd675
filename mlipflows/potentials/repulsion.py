"""Any potential plus a repulsive nuclear core: the ``MODEL+zbl`` load specs.

Universal MLIPs never saw atoms much closer than a bond, and inside that range many of them
are not repulsive at all: SevenNet-0 gives two Cs atoms 0.6 Å apart −5 × 10⁵ eV and pulls
them further together. A screened nuclear (ZBL) repulsion added on top cannot fix that (at
0.6 Å it is +2 × 10³ eV), so inside a core the model is switched *off*:

    E = E_ref + w (E_model − E_ref) + (1 − w) B + E_ZBL
    w = Π_{i≠j} s(x_ij),   x_ij = r_ij / (R_cov,i + R_cov,j)

- s(x) = 0 below ``x_off``, 1 above ``x_on`` and the C² smoothstep 6t⁵ − 15t⁴ + 10t³ between
  (t = (x − x_off)/(x_on − x_off)); the product runs over directed edges (each pair as s²);
- E_ref = Σ_i μ_i, the model's own elemental references
  (:func:`mlipflows.engine.sanity.elemental_energies`), so that the plateau does not depend
  on the model's energy zero;
- B = 1000 eV + 10 eV × N (N atoms): inside the core the structure sits on a plateau B
  above its elements. Any configuration with all pairs outside the core is below it (10 eV
  per atom is above the largest cohesive energy, and a model's own repulsion in the switch
  region is at most a few hundred eV), so crossing the switch always pushes the atoms apart;
- E_ZBL is the universal ZBL screened Coulomb repulsion (:class:`~mlipflows.models.zbl.
  ZBLRepulsion`, fixed universal parameters), switched off at x_on by its C² envelope; it
  pushes pairs out of the core, where the plateau is flat.

Forces and stress are exact derivatives (E_model enters the ∇w term as a constant), so the
result is conservative and smooth. Known crystals never come near the core: over 6,251 of
them the closest pair sits at 0.62 × the covalent-radius sum (:mod:`mlipflows.engine.sanity`).
For them w = 1 and E_ZBL = 0 exactly, and ``MODEL+zbl`` returns the model's own numbers bit for
bit; it costs one short-range neighbour list per call. Use it for random structure search
and user inputs of unknown quality. A structure with one pair deep in the core feels only the
core until that pair has separated; then it relaxes with the model as usual.
"""

from __future__ import annotations

import hashlib

import torch
from ase.data import chemical_symbols, covalent_radii

from mlipflows.engine.batch import Batch, segment_sum
from mlipflows.engine.neighbors import neighbor_list
from mlipflows.models.geometry import forces_and_stress, strained
from mlipflows.models.zbl import ZBLRepulsion
from mlipflows.potentials import ZBL_SUFFIX
from mlipflows.potentials.base import ModelCard, Potential, PotentialOutput

X_ON = 0.5  # model fully on above this fraction of the covalent-radius sum
X_OFF = 0.35  # model fully off below it
# the plateau that replaces the model inside the core, eV above the elements: B0 + b·N
BARRIER = 1000.0
BARRIER_PER_ATOM = 10.0


def smoothstep(x: torch.Tensor, x_off: float = X_OFF, x_on: float = X_ON) -> torch.Tensor:
    """C² switch: 0 for x ≤ x_off, 1 for x ≥ x_on, 6t⁵ − 15t⁴ + 10t³ between."""
    t = ((x - x_off) / (x_on - x_off)).clamp(0.0, 1.0)
    return t * t * t * (t * (6.0 * t - 15.0) + 10.0)


class RepulsiveCore(Potential):
    """``base`` with a ZBL core: the model is switched off for pairs inside ``x_off``."""

    def __init__(
        self,
        base: Potential,
        x_off: float = X_OFF,
        x_on: float = X_ON,
        barrier: float = BARRIER,
        barrier_per_atom: float = BARRIER_PER_ATOM,
    ) -> None:
        if not 0 < x_off < x_on:
            raise ValueError(f"the core needs 0 < x_off < x_on, got {x_off}, {x_on}")
        self.base, self.x_off, self.x_on = base, float(x_off), float(x_on)
        self.barrier, self.barrier_per_atom = float(barrier), float(barrier_per_atom)
        self.device, self.dtype = base.device, base.dtype
        self.adopt_batching(base)
        self.zbl = ZBLRepulsion(radius_factor=x_on, trainable=False).double().to(base.device)
        self.radii = torch.as_tensor(covalent_radii, dtype=torch.float64, device=base.device)
        tag = f"zbl-core-{x_off:g}-{x_on:g}-{barrier:g}+{barrier_per_atom:g}N-eV"
        card = base.card
        self.card = ModelCard(
            name=f"{card.name}{ZBL_SUFFIX}",
            version=f"{card.version}+{tag}",
            # results are keyed by checksum: with the core they must not replace the plain model's
            checksum=hashlib.sha256(f"{card.checksum}+{tag}".encode()).hexdigest(),
            source=f"{card.source} + ZBL repulsive core (model off below {x_off:g}, on above "
            f"{x_on:g} × covalent-radius sums)",
            cutoff=card.cutoff,
            elements=card.elements,
        )

    def evaluate(self, batch: Batch, compute_stress: bool = True) -> PotentialOutput:
        batch = batch.to(self.device)  # the core terms meet the base model's output on its device
        out = self.base.evaluate(batch, compute_stress=compute_stress)
        inside = self._systems_inside(batch)
        if not inside:
            return out
        part = batch.subset(inside).to(dtype=torch.float64)
        idx = torch.as_tensor(inside, device=batch.device)
        atoms = batch.atom_mask(inside)
        e_ref = self._reference_energies(part)
        # the model's energy above its own elements: the gauge in which the plateau B is set
        e_rel = out.energy[idx].to(torch.float64) - e_ref
        w, core_e, core_f, core_s = self._core(part, e_rel, compute_stress)
        off = w == 0  # the model's numbers there may be anything, even inf: it is switched off
        f_m = out.forces[atoms].to(torch.float64)
        energy = out.energy.to(torch.float64).clone()
        energy[idx] = e_ref + torch.where(off, 0.0, w * e_rel) + core_e
        forces = out.forces.to(torch.float64).clone()
        forces[atoms] = torch.where(off[part.system_idx, None], 0.0, w[part.system_idx, None] * f_m) + core_f
        stress = None
        if out.stress is not None and core_s is not None:
            stress = out.stress.to(torch.float64).clone()
            s_m = torch.where(off[:, None, None], 0.0, w[:, None, None] * stress[idx])
            stress[idx] = s_m + core_s
        return PotentialOutput(
            energy=energy.to(out.energy.dtype),
            forces=forces.to(out.forces.dtype),
            stress=None if stress is None else stress.to(out.stress.dtype),  # type: ignore[union-attr]
        )

    def _reference_energies(self, part: Batch) -> torch.Tensor:
        """Σ_i μ_i per system, eV: the model's own elemental references (0 where one is missing)."""
        from mlipflows.engine.sanity import elemental_energies

        symbols = [chemical_symbols[int(z)] for z in part.atomic_numbers.tolist()]
        mu = elemental_energies(self.base, set(symbols))
        per_atom = torch.tensor([mu.get(el, 0.0) for el in symbols], dtype=torch.float64, device=part.device)
        return segment_sum(per_atom, part.system_idx, part.n_systems)

    def _systems_inside(self, batch: Batch) -> list[int]:
        """Systems with a pair closer than x_on × its covalent-radius sum (usually none)."""
        z = batch.atomic_numbers
        if len(z) == 0:
            return []
        cutoff = self.x_on * 2 * float(self.radii[z].max())
        graph = neighbor_list(batch.to(dtype=torch.float64), cutoff)
        if graph.n_edges == 0:
            return []
        i, j = graph.edge_index
        pos = batch.positions.detach().to(torch.float64)
        vec = pos[j] - pos[i] + graph.shift_vectors(batch.cell.detach().to(torch.float64))
        x = vec.norm(dim=1) / (self.radii[z[i]] + self.radii[z[j]])
        return sorted(set(graph.edge_system[x < self.x_on].tolist()))

    def _core(
        self, part: Batch, e_model: torch.Tensor, compute_stress: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """The core terms of the systems in ``part``.

        Returns w and (1 − w) B + E_ZBL (S,), and the forces (N, 3) and stresses (S, 3, 3) of
        w·E_rel + (1 − w) B + E_ZBL with E_rel held fixed (the w·F_model part is the caller's).
        """
        graph = neighbor_list(part, self.x_on * 2 * float(self.radii[part.atomic_numbers].max()))
        with torch.enable_grad():
            positions, cell, inputs = strained(part)
            r = graph.edge_vectors(positions, cell).norm(dim=1)
            i, j = graph.edge_index
            x = r / (self.radii[part.atomic_numbers[i]] + self.radii[part.atomic_numbers[j]])
            s = smoothstep(x, self.x_off, self.x_on)
            # w = Π s over directed edges, as exp Σ log s; a zero factor makes w exactly 0
            zero = segment_sum((s <= 0).double(), graph.edge_system, part.n_systems) > 0
            log_w = segment_sum(torch.log(s.clamp_min(1e-300)), graph.edge_system, part.n_systems)
            w = torch.where(zero, torch.zeros_like(log_w), torch.exp(log_w))
            e_zbl = self.zbl(r, graph.edge_index, part.atomic_numbers, graph.edge_system, part.n_systems)
            e_fixed = torch.where(zero | ~torch.isfinite(e_model), 0.0, e_model.detach())
            plateau = self.barrier + self.barrier_per_atom * part.n_atoms.to(w.dtype)
            core = (1 - w) * plateau + e_zbl
            f, st = forces_and_stress(w * e_fixed + core, inputs, compute_stress=compute_stress)
        return w.detach(), core.detach(), f, st
