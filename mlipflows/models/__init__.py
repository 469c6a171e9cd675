"""Our own MLIP architectures and the physics layers they share.

Shared layers (one physical idea per module): :mod:`radial` bases, :mod:`cutoff` envelopes,
:mod:`embedding` of elements, multi-head :mod:`readout` with the lone-atom guarantee, :mod:`zbl`
repulsion, D3 :mod:`dispersion`, :mod:`electrostatics` (Gaussian-charge Qeq, Ewald, direct Coulomb), the
differentiable :mod:`geometry` with forces/stress by autograd, the :mod:`base` model interface,
the :mod:`potential` adapter and the weights-only :mod:`checkpoint` format. Architectures:
:mod:`mpnice` (charge-equilibrated message passing).
"""
