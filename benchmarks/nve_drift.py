"""NVE energy conservation of our models: total-energy drift on a 64-atom Si cell over 1 ps.

Velocity Verlet (ASE) with dt = 1 fs from a Maxwell-Boltzmann start at ``--temperature``;
the model runs in float64 through :class:`~mlipflows.potentials.ase_calculator.MlipflowsCalculator`.
Reports the drift (slope of a linear fit of E_tot(t), eV/atom/ps) and the largest excursion
|E_tot(t) - E_tot(0)| per atom. A non-conservative or non-smooth model (forces that are not
-∇E, or a kink at the cutoff) shows up as a drift.

    nice -n 10 python benchmarks/nve_drift.py --model mlipflows/data/models/geodite-si-mlearn.pt
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint path or registry name")
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--dt-fs", type=float, default=1.0)
    parser.add_argument("--temperature", type=float, default=600.0, help="initial temperature, K")
    parser.add_argument("--out", type=Path, default=None, help="append a JSON line here")
    args = parser.parse_args()

    import numpy as np
    import torch
    from ase import units
    from ase.build import bulk
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from ase.md.verlet import VelocityVerlet

    from mlipflows.potentials import load_potential
    from mlipflows.potentials.ase_calculator import MlipflowsCalculator

    torch.set_num_threads(1)
    atoms = bulk("Si", "diamond", 5.43, cubic=True) * (2, 2, 2)
    atoms.calc = MlipflowsCalculator(load_potential(args.model, dtype=torch.float64))
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=np.random.default_rng(0))
    Stationary(atoms)
    dyn = VelocityVerlet(atoms, timestep=args.dt_fs * units.fs)
    energies: list[float] = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=1)
    t0 = time.perf_counter()
    dyn.run(args.steps)
    n = len(atoms)
    e = np.array(energies) / n
    t_ps = np.arange(len(e)) * args.dt_fs / 1000.0
    row = {
        "model": args.model,
        "n_atoms": n,
        "steps": args.steps,
        "dt_fs": args.dt_fs,
        "t0_K": args.temperature,
        "final_T_K": float(atoms.get_temperature()),
        "drift_ev_atom_per_ps": float(np.polyfit(t_ps, e, 1)[0]),
        "max_excursion_ev_atom": float(np.abs(e - e[0]).max()),
        "seconds": time.perf_counter() - t0,
    }
    print(json.dumps(row))
    if args.out is not None:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
