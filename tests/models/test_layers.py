"""Shared layers: envelope smoothness, radial bases, ZBL start values, readout heads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlipflows.models.cutoff import PolynomialCutoff, cosine_switch, polynomial_envelope
from mlipflows.models.radial import BesselBasis, GaussianBasis
from mlipflows.models.zbl import ZBL_C, ZBL_D, ZBLRepulsion

F64 = torch.float64


@pytest.mark.parametrize("fn", [lambda x: polynomial_envelope(x, 6), lambda x: cosine_switch(x, 0.0, 1.0)])
def test_envelopes_are_c2_at_the_cutoff(fn):
    x = torch.tensor([1.0 - 1e-4], dtype=F64, requires_grad=True)
    (d1,) = torch.autograd.grad(fn(x).sum(), x, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), x)
    assert abs(float(fn(x))) < 1e-9 and abs(float(d1)) < 1e-5 and abs(float(d2)) < 0.1
    assert float(fn(torch.tensor([0.0], dtype=F64))) == pytest.approx(1.0)
    assert float(fn(torch.tensor([1.2], dtype=F64))) == 0.0
    with pytest.raises(ValueError, match="C²"):
        PolynomialCutoff(5.0, p=1)


def test_radial_bases_shapes_and_values():
    r = torch.linspace(0.5, 5.0, 7, dtype=F64)
    b = BesselBasis(5.0, 4).double()(r)
    assert b.shape == (7, 4)
    np.testing.assert_allclose(b[-1].numpy(), 0.0, atol=1e-12)  # sin(nπ) = 0 at r_c
    g = GaussianBasis(5.0, 6).double()(r)
    assert g.shape == (7, 6) and float(g.max()) <= 1.0


def test_zbl_starts_from_universal_screening():
    zbl = ZBLRepulsion().double()
    x = torch.tensor([0.0, 1.0, 3.0], dtype=F64)
    ref = [sum(c * np.exp(-d * xi) for c, d in zip(ZBL_C, ZBL_D, strict=True)) for xi in x.tolist()]
    np.testing.assert_allclose(zbl.screening(x).detach().numpy(), ref, rtol=1e-4)
    assert float(zbl.screening(x[:1])) == pytest.approx(1.0)  # Σ c_k = 1: bare Coulomb at r → 0
    # switched off beyond the covalent-radius sum (Si: 2 × 1.11 Å)
    e = zbl.pair_energy(torch.tensor([2.3], dtype=F64), torch.tensor([14]), torch.tensor([14]))
    assert float(e) == 0.0
