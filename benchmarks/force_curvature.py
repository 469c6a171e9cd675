"""How smooth is a model's potential-energy surface on the scale of phonon displacements?

Moves one atom of a 64-atom diamond Si cell by ±u along [110] and prints, for several u, the
largest first (dF/du, ~fc2) and second (d²F/du², ~fc3) central differences of the forces on
all atoms, in float64. For a smooth surface both settle to constants as u → 0; a drift with
u means the finite-difference force constants (phonopy / phono3py) depend on the displacement
amplitude whatever the float precision.

    python benchmarks/force_curvature.py [--models sevennet-0 mpnice-si-mlearn]
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

warnings.filterwarnings("ignore")

STEPS = (0.003, 0.01, 0.02, 0.03, 0.05)  # Å


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["sevennet-0", "mpnice-si-mlearn"])
    args = parser.parse_args()

    import torch
    from ase.build import bulk

    from mlipflows.engine import Batch
    from mlipflows.potentials import load_potential

    torch.set_num_threads(1)
    cell = bulk("Si", "diamond", 5.43, cubic=True) * (2, 2, 2)
    direction = np.array([1.0, 1.0, 0.0]) / np.sqrt(2.0)

    def forces(pot, u: float) -> np.ndarray:
        atoms = cell.copy()
        atoms.positions[0] += u * direction
        return pot.evaluate(Batch.from_atoms([atoms], dtype=torch.float64)).forces.double().numpy()

    print(f"{'model':20s} {'u (Å)':>7s} {'max|dF/du| (eV/Å²)':>20s} {'max|d²F/du²| (eV/Å³)':>22s}")
    for spec in args.models:
        pot = load_potential(spec, dtype=torch.float64)
        f0 = forces(pot, 0.0)
        for u in STEPS:
            plus, minus = forces(pot, u), forces(pot, -u)
            first = np.abs((plus - minus) / (2 * u)).max()
            second = np.abs((plus + minus - 2 * f0) / (u * u)).max()
            print(f"{spec:20s} {u:7.3f} {first:20.3f} {second:22.2f}")


if __name__ == "__main__":
    main()
