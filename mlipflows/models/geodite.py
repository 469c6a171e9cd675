"""Geodite-style model: equivariant message passing without tensor products.

Each atom i carries C scalar channels h_i, C vectors v_i (l = 1) and C symmetric traceless
tensors t_i (l = 2), in Cartesian form (:mod:`mlipflows.models.cartesian`); each directed edge
i←j (r_ij < r_c, periodic self-images included) carries C invariant edge features e_ij. With
u(r) the C² polynomial envelope, r̂ = r_ij/r_ij and Y = r̂ r̂ᵀ - I/3, block t does:

1. **Edge update** from inner products with node features (all invariants):
   e_ij ← e_ij + MLP[e_ij, h_i, h_j, v_i·r̂, v_j·r̂, r̂ᵀt_i r̂, r̂ᵀt_j r̂, v_i·v_j, t_i:t_j].
2. **Attention filter** (no softmax, no neighbour counts):
   a_ij = u(r_ij) · sigmoid(Q h_i ⊙ K h_j + A e_ij) per channel, which goes to zero as a C²
   function when j leaves the sphere.
3. **Messages**, steerable features multiplied by invariants only:
   m_i^h = Σ_j a_ij φ0(e_ij) V h_j,
   m_i^v = Σ_j a_ij [φ1(e_ij) r̂ + φ2(e_ij) M_v v_j],
   m_i^t = Σ_j a_ij [φ3(e_ij) Y + φ4(e_ij) M_t t_j],
   each divided by (1 + ρ_i)^γ with the smooth local density ρ_i = Σ_j u(r_ij) (density
   normalisation; γ = 1/2 by default).
4. **Node update**: h_i ← h_i + MLP[h_i, m^h, |N_v m^v|², |N_t m^t|²]; v_i ← v_i + P_v m^v;
   t_i ← t_i + P_t m^t (channel mixing only).
5. **Equivariant coupling** of scalars and steerable features: invariants s_i = [h_i, |B_v v_i|²,
   |B_t t_i|², (B_v v_i)·(B'_v v_i)] → MLP → (δh, g_v, g_t); h_i ← h_i + δh,
   v_i ← v_i + g_v ⊙ G_v v_i, t_i ← t_i + g_t ⊙ G_t t_i.

E = Σ_i ε_i(h_i) with the multi-head readout of :mod:`readout` (a lone atom's features are
propagated through the same blocks with zero messages, so it returns E0 exactly) + ZBL with
learnable screening. Forces and stress by autograd (:mod:`geometry`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from mlipflows.engine.batch import segment_sum
from mlipflows.models.base import EnergyModel, register_architecture
from mlipflows.models.cartesian import (
    ChannelMix,
    edge_harmonics,
    project_tensor,
    project_vector,
    tensor_norm2,
    vector_norm2,
)
from mlipflows.models.cutoff import PolynomialCutoff
from mlipflows.models.embedding import ElementEmbedding
from mlipflows.models.geometry import AtomicGraph
from mlipflows.models.mlp import mlp
from mlipflows.models.radial import BesselBasis
from mlipflows.models.readout import MultiHeadReadout, smooth_coordination
from mlipflows.models.zbl import ZBLRepulsion


@dataclass
class GeoditeConfig:
    """Hyper-parameters (lengths in Å)."""

    elements: list[str]
    heads: list[str] = field(default_factory=lambda: ["default"])
    cutoff: float = 5.0
    n_channels: int = 32
    n_radial: int = 8
    n_blocks: int = 2
    hidden: int = 32
    avg_neighbors: float = 10.0
    density_exponent: float = 0.5
    zbl: bool = True


@dataclass
class Features:
    """Node features: h (N, C), v (N, C, 3), t (N, C, 3, 3); edge features e (E, C)."""

    h: torch.Tensor
    v: torch.Tensor
    t: torch.Tensor
    e: torch.Tensor


@dataclass
class EdgeGeometry:
    """Per-edge quantities shared by all blocks."""

    index: torch.Tensor  # (2, E) receiver i, neighbour j
    unit: torch.Tensor  # (E, 3) r̂
    y2: torch.Tensor  # (E, 3, 3) r̂ r̂ᵀ - I/3
    envelope: torch.Tensor  # (E,) u(r)
    norm: torch.Tensor  # (N,) (1 + ρ_i)^-γ


class GeoditeBlock(nn.Module):
    """Edge update, attention messages, node update and scalar–steerable coupling."""

    def __init__(self, cfg: GeoditeConfig) -> None:
        super().__init__()
        c, hid = cfg.n_channels, cfg.hidden
        self.c = c
        self.edge_update = mlp(9 * c, [hid], c)
        self.query, self.key = nn.Linear(c, c, bias=False), nn.Linear(c, c, bias=False)
        self.attn_edge = nn.Linear(c, c)
        self.value = nn.Linear(c, c, bias=False)
        self.filters = nn.Linear(c, 5 * c)
        self.mix_v_in, self.mix_t_in = ChannelMix(c, c), ChannelMix(c, c)
        self.norm_v, self.norm_t = ChannelMix(c, c), ChannelMix(c, c)
        self.scalar_update = mlp(4 * c, [hid], c)
        self.proj_v, self.proj_t = ChannelMix(c, c), ChannelMix(c, c)
        self.couple_v, self.couple_v2, self.couple_t = ChannelMix(c, c), ChannelMix(c, c), ChannelMix(c, c)
        self.coupling = mlp(4 * c, [hid], 3 * c)
        self.gate_v, self.gate_t = ChannelMix(c, c), ChannelMix(c, c)

    def messages(
        self, f: Features, g: EdgeGeometry
    ) -> tuple[Features, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Updated edge features and the aggregated, density-normalised messages m^h, m^v, m^t."""
        i, j = g.index
        n = f.h.shape[0]
        h, v, t, u = f.h, f.v, f.t, g.unit
        invariants = [
            f.e,
            h[i],
            h[j],
            project_vector(v[i], u),
            project_vector(v[j], u),
            project_tensor(t[i], u),
            project_tensor(t[j], u),
            (v[i] * v[j]).sum(-1),
            (t[i] * t[j]).sum((-1, -2)),
        ]
        e = f.e + self.edge_update(torch.cat(invariants, dim=1))
        attn = torch.sigmoid(self.query(h)[i] * self.key(h)[j] + self.attn_edge(e)) * g.envelope[:, None]
        phi = torch.split(self.filters(e) * attn.repeat(1, 5), self.c, dim=1)
        m_h = segment_sum(phi[0] * self.value(h)[j], i, n)
        edge_v = phi[1][:, :, None] * u[:, None, :] + phi[2][:, :, None] * self.mix_v_in(v)[j]
        edge_t = phi[3][:, :, None, None] * g.y2[:, None] + phi[4][:, :, None, None] * self.mix_t_in(t)[j]
        m_v = segment_sum(edge_v, i, n)
        m_t = segment_sum(edge_t, i, n)
        w = g.norm[:, None]
        return Features(h, v, t, e), m_h * w, m_v * w[..., None], m_t * w[..., None, None]

    def update(self, f: Features, m_h: torch.Tensor, m_v: torch.Tensor, m_t: torch.Tensor) -> Features:
        """Node update from the messages, then the scalar–steerable coupling block."""
        x = torch.cat([f.h, m_h, vector_norm2(self.norm_v(m_v)), tensor_norm2(self.norm_t(m_t))], dim=1)
        h = f.h + self.scalar_update(x)
        v = f.v + self.proj_v(m_v)
        t = f.t + self.proj_t(m_t)
        bv = self.couple_v(v)
        s = torch.cat(
            [h, vector_norm2(bv), tensor_norm2(self.couple_t(t)), (bv * self.couple_v2(v)).sum(-1)], 1
        )
        dh, g_v, g_t = torch.split(self.coupling(s), self.c, dim=1)
        v = v + g_v[:, :, None] * self.gate_v(v)
        t = t + g_t[:, :, None, None] * self.gate_t(t)
        return Features(h + dh, v, t, f.e)


@register_architecture
class Geodite(EnergyModel):
    """Tensor-product-free equivariant message passing (see module docstring)."""

    architecture = "geodite"
    config_class = GeoditeConfig  # its options (the training YAML's ``model:``)

    def __init__(self, **kwargs: Any) -> None:
        cfg = GeoditeConfig(**kwargs)
        super().__init__(cfg.cutoff, cfg.elements, cfg.heads)
        self.cfg = cfg
        c = cfg.n_channels
        self.embedding = ElementEmbedding(c)
        self.radial = BesselBasis(cfg.cutoff, cfg.n_radial)
        self.envelope = PolynomialCutoff(cfg.cutoff)
        self.edge_embedding = mlp(cfg.n_radial + 2 * c, [cfg.hidden], c)
        self.blocks = nn.ModuleList(GeoditeBlock(cfg) for _ in range(cfg.n_blocks))
        self.readout = MultiHeadReadout(c, cfg.heads, cfg.hidden)
        self.readout.mean_coordination.fill_(cfg.avg_neighbors)
        self.zbl = ZBLRepulsion() if cfg.zbl else None

    def get_config(self) -> dict[str, Any]:
        return asdict(self.cfg)

    def edge_geometry(self, graph: AtomicGraph) -> EdgeGeometry:
        r = graph.lengths
        env = self.envelope(r)
        unit, y2 = edge_harmonics(graph.vectors / r[:, None])
        density = segment_sum(env, graph.edge_index[0], graph.n_atoms)
        norm = (1.0 + density) ** (-self.cfg.density_exponent)
        return EdgeGeometry(graph.edge_index, unit, y2, env, norm)

    def features(self, graph: AtomicGraph) -> tuple[Features, torch.Tensor]:
        """Final node/edge features and the scalar features of the same atoms when isolated."""
        r = graph.lengths
        g = self.edge_geometry(graph)
        i, j = g.index
        n, c = graph.n_atoms, self.cfg.n_channels
        h = self.embedding(graph.atomic_numbers).to(r.dtype)
        e = self.edge_embedding(torch.cat([self.radial(r), h[i], h[j]], dim=1))
        v = h.new_zeros((n, c, 3))
        t = h.new_zeros((n, c, 3, 3))
        f = Features(h, v, t, e)
        iso = Features(h, v, t, e[:0])
        zero = h.new_zeros((n, c))
        for block in self.blocks:
            f = block.update(*block.messages(f, g))
            # a lone atom: no neighbours, hence zero messages and zero steerable features
            iso = block.update(iso, zero, v, t)
        return f, iso.h

    def forward(self, graph: AtomicGraph) -> dict[str, torch.Tensor]:
        z, sys_idx = graph.atomic_numbers, graph.system_idx
        f, h_iso = self.features(graph)
        coordination = smooth_coordination(graph.lengths, graph.edge_index, graph.n_atoms, self.cutoff)
        atomic = self.readout(f.h, h_iso, z, graph.head[sys_idx], coordination)
        energy = segment_sum(atomic, sys_idx, graph.n_systems)
        if self.zbl is not None:
            energy = energy + self.zbl(graph.lengths, graph.edge_index, z, graph.edge_system, graph.n_systems)
        return {"energy": energy}
