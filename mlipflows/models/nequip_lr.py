"""NequIP-LR-style model: short-range equivariant message passing + global charge equilibration.

After NequIP (Batzner et al., Nat. Commun. 2022) with the long-range extension of the
"NequIP-LR" kind (equivariant features → electronegativities → global Qeq → charges fed back).
Node features are e3nn irreps ``n_s×0e + n_v×1o + n_t×2e``. One interaction block is

    m_i = (1/√n̄) Σ_j R(r_ij) u(r_ij) ⊙ [W_up h_j ⊗ Y(r̂_ij)]          (uvu tensor product)
    h_i ← h_i + Gate(W_down m_i + W_self h_i)

with Y the real spherical harmonics l ≤ 2, R an MLP of the Bessel basis, u the C² envelope
(edge weights vanish smoothly at the short cutoff) and n̄ the mean smooth coordination.

After ``n_blocks_short`` blocks the scalars give electronegativities χ_i = MLP(h_i⁰) (eV/e);
hardness J(Z) > 0 (eV/e²) and Gaussian widths σ(Z) are learned per element. The charges come
from the **exact** global Qeq of part 1 (:func:`~mlipflows.models.electrostatics.solve_qeq`:
bordered linear solve with Ewald for crystals, direct sum for molecules, Σq = Q per
structure). They are encoded (h_i⁰ ← h_i⁰ + MLP[q_i, q_i²]) and fed to ``n_blocks_charge``
further equivariant blocks, so the short-range energy depends on the charges too:

    E = Σ_i ε_i(h_i⁰) + E_Qeq(q; χ, J) + E_ZBL,   E_Qeq = Σ_i (χ_i q_i + ½ J_i q_i²) + E_es(q).

A lone neutral atom has q = 0 and zero messages, so it returns E0 exactly. Forces and stress by
autograd through the solve (charges depend on positions and strain).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

from mlipflows.engine.batch import segment_sum
from mlipflows.models.base import EnergyModel, register_architecture
from mlipflows.models.cutoff import PolynomialCutoff
from mlipflows.models.electrostatics import coulomb_operator, qeq_energy, solve_qeq
from mlipflows.models.embedding import MAX_Z, ElementEmbedding
from mlipflows.models.geometry import AtomicGraph
from mlipflows.models.mlp import mlp
from mlipflows.models.radial import BesselBasis
from mlipflows.models.readout import MultiHeadReadout, smooth_coordination
from mlipflows.models.zbl import ZBLRepulsion


@dataclass
class NequIPLRConfig:
    """Hyper-parameters (lengths in Å)."""

    elements: list[str]
    heads: list[str] = field(default_factory=lambda: ["default"])
    cutoff: float = 4.0
    n_scalars: int = 16
    n_vectors: int = 8
    n_tensors: int = 4
    n_radial: int = 8
    radial_hidden: int = 16
    n_blocks_short: int = 2
    n_blocks_charge: int = 1
    hidden: int = 32
    avg_neighbors: float = 10.0
    electrostatics: bool = True
    zbl: bool = True
    ewald_cutoff: float = 6.0
    ewald_accuracy: float = 1e-6


class EquivariantInteraction(nn.Module):
    """One NequIP interaction block (uvu tensor product with radial weights, gate, residual)."""

    def __init__(self, irreps_in: o3.Irreps, irreps_hidden: o3.Irreps, cfg: NequIPLRConfig) -> None:
        super().__init__()
        sh = o3.Irreps.spherical_harmonics(2)
        self.linear_up = o3.Linear(irreps_in, irreps_in)
        mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(irreps_in):
            for j, (_, ir_edge) in enumerate(sh):
                for ir_out in ir_in * ir_edge:
                    if ir_out in irreps_hidden:
                        instructions.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir_out))
        irreps_mid, perm, _ = o3.Irreps(mid).sort()
        instructions = [(i, j, perm[k], mode, w) for i, j, k, mode, w in instructions]
        self.tp = o3.TensorProduct(
            irreps_in, sh, irreps_mid, instructions, shared_weights=False, internal_weights=False
        )
        self.radial = mlp(cfg.n_radial, [cfg.radial_hidden], self.tp.weight_numel)
        scalars = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l == 0])
        gated = o3.Irreps([(m, ir) for m, ir in irreps_hidden if ir.l > 0])
        self.gate = Gate(scalars, [nn.functional.silu], f"{gated.num_irreps}x0e", [torch.sigmoid], gated)
        self.linear_down = o3.Linear(irreps_mid.simplify(), self.gate.irreps_in)
        self.self_connection = o3.Linear(irreps_in, self.gate.irreps_in)
        self.residual = irreps_in == irreps_hidden
        self.norm = 1.0 / cfg.avg_neighbors**0.5

    def message(
        self,
        h: torch.Tensor,
        sh: torch.Tensor,
        rbf: torch.Tensor,
        env: torch.Tensor,
        edge_index: torch.Tensor,
    ) -> torch.Tensor:
        """(N, dim mid) aggregated messages; each edge term carries the envelope u(r)."""
        i, j = edge_index
        weights = self.radial(rbf) * env[:, None]
        msg = self.tp(self.linear_up(h)[j], sh, weights)
        return segment_sum(msg, i, h.shape[0]) * self.norm

    def update(self, h: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        out = self.gate(self.linear_down(message) + self.self_connection(h))
        return h + out if self.residual else out


@register_architecture
class NequIPLR(EnergyModel):
    """Equivariant short-range model with exact global Qeq and charge feedback."""

    architecture = "nequip_lr"
    config_class = NequIPLRConfig  # its options (the training YAML's ``model:``)

    @property
    def max_atoms_per_call(self) -> int | None:
        """The exact Qeq builds one dense (N, N) coupling matrix over the whole batch (float64:
        0.5 GB at 8,192 atoms before copies and autograd, 34 GB at 64k), so batches stop at
        8,192 atoms when it is on."""
        return 8192 if self.cfg.electrostatics else None

    def __init__(self, **kwargs: Any) -> None:
        cfg = NequIPLRConfig(**kwargs)
        if cfg.electrostatics and cfg.n_blocks_charge < 1:
            raise ValueError("electrostatics needs n_blocks_charge >= 1 (blocks that read the charges)")
        super().__init__(cfg.cutoff, cfg.elements, cfg.heads)
        self.cfg = cfg
        ns = cfg.n_scalars
        self.irreps_in = o3.Irreps(f"{ns}x0e")
        self.irreps_hidden = o3.Irreps(f"{ns}x0e + {cfg.n_vectors}x1o + {cfg.n_tensors}x2e")
        self.embedding = ElementEmbedding(ns)
        self.radial = BesselBasis(cfg.cutoff, cfg.n_radial)
        self.envelope = PolynomialCutoff(cfg.cutoff)
        n_blocks = cfg.n_blocks_short + cfg.n_blocks_charge
        self.blocks = nn.ModuleList(
            EquivariantInteraction(self.irreps_in if k == 0 else self.irreps_hidden, self.irreps_hidden, cfg)
            for k in range(n_blocks)
        )
        self.chi_head = mlp(ns, [cfg.hidden], 1)
        self.charge_encoder = mlp(2, [cfg.hidden], ns)
        # J(Z) = 1 + softplus(·) ≥ 1 eV/e², σ(Z) ∈ (0.3, 1.5) Å starting at 1 Å (as in MPNICE)
        self.hardness_raw = nn.Parameter(torch.full((MAX_Z + 1,), 2.0))
        self.sigma_logit = nn.Parameter(torch.full((MAX_Z + 1,), 0.336))
        self.readout = MultiHeadReadout(ns, cfg.heads, cfg.hidden)
        self.readout.mean_coordination.fill_(cfg.avg_neighbors)
        self.zbl = ZBLRepulsion() if cfg.zbl else None

    def get_config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def qeq_parameters(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """χ (N,) eV/e, J (N,) eV/e², σ (N,) Å."""
        chi = self.chi_head(h[:, : self.cfg.n_scalars])[:, 0]
        hardness = 1.0 + nn.functional.softplus(self.hardness_raw[z]).to(h.dtype)
        sigma = (0.3 + 1.2 * torch.sigmoid(self.sigma_logit[z])).to(h.dtype)
        return chi, hardness, sigma

    def encode_charges(self, h: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Add an MLP of (q, q²) to the scalar channels."""
        ns = self.cfg.n_scalars
        enc = self.charge_encoder(torch.stack([q, q * q], dim=1))
        return torch.cat([h[:, :ns] + enc, h[:, ns:]], dim=1)

    def features(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        """Final features h (N, dim irreps_hidden), lone-atom features, charges, χ, J, σ."""
        r, z = graph.lengths, graph.atomic_numbers
        env, rbf = self.envelope(r), self.radial(r)
        sh = o3.spherical_harmonics(
            o3.Irreps.spherical_harmonics(2), graph.vectors, normalize=True, normalization="component"
        )
        h = self.embedding(z).to(r.dtype)
        h_iso = h
        out: dict[str, torch.Tensor] = {}
        for k, block in enumerate(self.blocks):
            if k == self.cfg.n_blocks_short and self.cfg.electrostatics:
                out["short"] = h
                chi, hardness, sigma = self.qeq_parameters(h, z)
                operator = coulomb_operator(
                    graph.as_batch(), sigma, self.cfg.ewald_cutoff, self.cfg.ewald_accuracy
                )
                q = solve_qeq(operator, chi, hardness, graph.total_charge)
                out["e_qeq"] = qeq_energy(operator, q, chi, hardness)
                out["charges"] = q
                h = self.encode_charges(h, q)
                # a lone neutral atom has q = 0
                h_iso = self.encode_charges(h_iso, torch.zeros_like(q))
            message = block.message(h, sh, rbf, env, graph.edge_index)
            h = block.update(h, message)
            h_iso = block.update(h_iso, torch.zeros_like(message))
        out["h"], out["h_iso"] = h, h_iso
        return out

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        z, sys_idx = graph.atomic_numbers, graph.system_idx
        f = self.features(graph)
        ns = self.cfg.n_scalars
        coordination = smooth_coordination(graph.lengths, graph.edge_index, graph.n_atoms, self.cutoff)
        atomic = self.readout(f["h"][:, :ns], f["h_iso"][:, :ns], z, graph.head[sys_idx], coordination)
        energy = segment_sum(atomic, sys_idx, graph.n_systems)
        out = {"energy": energy}
        if "charges" in f:
            out["energy"] = energy + f["e_qeq"]
            out["charges"] = f["charges"]
        if self.zbl is not None:
            out["energy"] = out["energy"] + self.zbl(
                graph.lengths, graph.edge_index, z, graph.edge_system, graph.n_systems
            )
        return out
