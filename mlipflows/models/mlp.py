"""Small multilayer perceptrons with smooth activations (SiLU keeps forces differentiable)."""

from __future__ import annotations

from torch import nn


def mlp(n_in: int, hidden: list[int], n_out: int, bias_out: bool = True) -> nn.Sequential:
    """Linear → SiLU → ... → Linear."""
    layers: list[nn.Module] = []
    last = n_in
    for width in hidden:
        layers += [nn.Linear(last, width), nn.SiLU()]
        last = width
    layers.append(nn.Linear(last, n_out, bias=bias_out))
    return nn.Sequential(*layers)
