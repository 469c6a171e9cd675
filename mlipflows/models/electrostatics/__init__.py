"""Electrostatics of Gaussian charges: Coulomb sums (direct and Ewald) and charge equilibration."""

from mlipflows.models.electrostatics.coulomb import COULOMB_EV_A, CoulombOperator, coulomb_operator
from mlipflows.models.electrostatics.qeq import diagonal_qeq, qeq_energy, solve_qeq

__all__ = [
    "COULOMB_EV_A",
    "CoulombOperator",
    "coulomb_operator",
    "diagonal_qeq",
    "qeq_energy",
    "solve_qeq",
]
