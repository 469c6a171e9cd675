"""κ throughput: our KappaMaker (batched displacements) vs a plain phono3py + ASE-calculator loop.

Same material (Si, 2×2×2 conventional fc3 supercell = 64 atoms, 111 displacements of 0.01 Å),
same model, same phono3py settings (symmetrized fc2/fc3, Wigner κ, isotopes, 300 K). The
plain loop is how Matbench Discovery / k_SRME drive phono3py: one ASE ``get_forces`` per
displaced supercell, through :class:`mlipflows.potentials.ase_calculator.MlipflowsCalculator`
(so both sides run the very same model code). Prints both wall times, the ratio and whether
the two κ agree within 0.5 %.

    python benchmarks/kappa_throughput.py [--model sevennet-0] [--mesh 9] [--device cpu] [--batch-atoms 1024]
"""

from __future__ import annotations

import argparse
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.build import bulk  # noqa: E402
from pymatgen.io.ase import AseAtomsAdaptor  # noqa: E402

FC3 = [2, 2, 2]
DISPLACEMENT = 0.01


def run_mlipflows(structure, model, device, mesh, batch_atoms):
    from mlipflows.makers import KappaMaker
    from mlipflows.makers.base import ChunkSettings

    maker = KappaMaker(
        chunk=ChunkSettings(model=model, device=device, max_atoms=batch_atoms),
        relax=None,
        fc3_supercell_matrix=FC3,
        displacement=DISPLACEMENT,
        mesh=[mesh] * 3,
    )
    t0 = time.perf_counter()
    doc = maker.make.original(maker, [structure], ["si"])[0]
    assert doc.state == "successful", doc.error
    return time.perf_counter() - t0, doc.kappa_tot_avg[0], doc.n_fc3_displacements


def run_plain_loop(structure, model, device, mesh):
    from phono3py import Phono3py
    from phonopy.structure.atoms import PhonopyAtoms

    from mlipflows.phonons.kappa import conductivity
    from mlipflows.potentials import load_potential
    from mlipflows.potentials.ase_calculator import MlipflowsCalculator

    calc = MlipflowsCalculator(load_potential(model, device=device))
    t0 = time.perf_counter()
    unitcell = PhonopyAtoms(
        symbols=[s.specie.symbol for s in structure],
        cell=structure.lattice.matrix,
        scaled_positions=structure.frac_coords,
    )
    ph3 = Phono3py(unitcell, supercell_matrix=FC3, primitive_matrix="auto")
    ph3.generate_displacements(distance=DISPLACEMENT)
    forces = []
    for cell in ph3.supercells_with_displacements:
        atoms = Atoms(cell.symbols, cell=cell.cell, positions=cell.positions, pbc=True)
        atoms.calc = calc
        forces.append(atoms.get_forces())
    t_forces = time.perf_counter() - t0
    result = conductivity(ph3, forces, None, [mesh] * 3)
    return time.perf_counter() - t0, float(result.kappa_tot_avg[0]), t_forces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--mesh", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-atoms", type=int, default=1024, help="atoms per batched call (memory)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    si = AseAtomsAdaptor.get_structure(bulk("Si", "diamond", 5.43, cubic=True))
    from mlipflows.potentials import load_potential

    load_potential(args.model, device=args.device)  # warm the cache: model loading is not timed

    t_ours, k_ours, n_disp = run_mlipflows(si, args.model, args.device, args.mesh, args.batch_atoms)
    t_plain, k_plain, t_plain_forces = run_plain_loop(si, args.model, args.device, args.mesh)
    rel = abs(k_ours - k_plain) / k_plain
    print(f"Si 2x2x2 conventional fc3 (64 atoms), {n_disp} displacements, mesh {args.mesh}^3, {args.model}")
    print(f"  mlipflows KappaMaker (batched):  {t_ours:8.1f} s   κ = {k_ours:.3f} W/m·K")
    print(f"  phono3py + ASE loop:             {t_plain:8.1f} s   κ = {k_plain:.3f} W/m·K")
    print(f"    (of which forces, one call per supercell: {t_plain_forces:.1f} s)")
    print(f"  speed-up (plain / ours): {t_plain / t_ours:.2f}x")
    agree = "yes" if rel < 0.005 else "NO"
    print(f"  κ agree within 0.5 %: {agree} (relative difference {rel:.2e})")
    raise SystemExit(0 if np.isfinite(rel) and rel < 0.005 else 1)


if __name__ == "__main__":
    main()
