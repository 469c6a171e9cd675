"""Relaxation throughput: mlipflows batched flow vs atomate2 per-structure jobs vs a plain ASE loop.

Same structures, same model, same settings (FIRE + Fréchet cell filter, fmax, max steps), run
side by side in one process. Prints wall times, structures/s, the ratios and the largest
energy disagreement per atom.

    python benchmarks/relax_throughput.py [--n 16] [--model sevennet-0] [--device cpu]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from jobflow import JobStore, run_locally  # noqa: E402
from maggma.stores import MemoryStore  # noqa: E402
from structures import mixed_structures  # noqa: E402

FMAX, STEPS = 0.05, 500


def run_mlipflows(structures, ids, model, device):
    from mlipflows.engine import RelaxSettings
    from mlipflows.makers import RelaxMaker, relax_flow
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.store import get_job_store

    maker = RelaxMaker(
        chunk=ChunkSettings(model=model, device=device), relax=RelaxSettings(fmax=FMAX, max_steps=STEPS)
    )
    flow = relax_flow(structures, ids, chunk_size=len(structures), maker=maker)
    store = get_job_store()  # the real embedded store, so store time is counted
    t0 = time.perf_counter()
    run_locally(flow, store=store, log=False, ensure_success=True)
    wall = time.perf_counter() - t0
    store.connect()
    docs = [d for j in flow.jobs for d in store.get_output(j.uuid)]
    energies = {d["structure_id"]: d["energy_per_atom"] for d in docs}
    return wall, [energies[i] for i in ids], [d["n_steps"] for d in docs]


def run_atomate2(structures, device):
    from atomate2.forcefields.jobs import ForceFieldRelaxMaker
    from jobflow import Flow

    maker = ForceFieldRelaxMaker(
        force_field_name="SevenNet",
        steps=STEPS,
        relax_kwargs={"fmax": FMAX},
        calculator_kwargs={"device": device},
    )
    jobs = [maker.make(s) for s in structures]
    store = JobStore(MemoryStore(), additional_stores={"data": MemoryStore()})
    # atomate2 writes final_atoms_object.xyz into the working directory; keep it out of the repo
    with contextlib.chdir(tempfile.mkdtemp(prefix="mlipflows-bench-atomate2-")):
        t0 = time.perf_counter()
        out = run_locally(Flow(jobs), store=store, log=False, ensure_success=True)
        wall = time.perf_counter() - t0
    energies = [out[j.uuid][1].output.output.energy / len(s) for j, s in zip(jobs, structures, strict=True)]
    return wall, energies


def run_ase_loop(structures, model, device):
    from ase.filters import FrechetCellFilter
    from ase.optimize import FIRE
    from pymatgen.io.ase import AseAtomsAdaptor

    from mlipflows.potentials.ase_calculator import MlipflowsCalculator

    calc = MlipflowsCalculator(model, device=device)
    t0 = time.perf_counter()
    energies = []
    for s in structures:
        atoms = AseAtomsAdaptor.get_atoms(s)
        atoms.calc = calc
        FIRE(FrechetCellFilter(atoms), logfile=None).run(fmax=FMAX, steps=STEPS)
        energies.append(atoms.get_potential_energy() / len(atoms))
    return time.perf_counter() - t0, energies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="number of structures (≥ 16)")
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-atomate2", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("MLIPFLOWS_HOME", tempfile.mkdtemp(prefix="mlipflows-bench-"))

    structures, ids = mixed_structures(args.n)
    n_atoms = [len(s) for s in structures]
    print(f"{len(structures)} structures, {min(n_atoms)}–{max(n_atoms)} atoms ({sum(n_atoms)} total)")
    print(f"model {args.model} on {args.device}; FIRE + Fréchet, fmax {FMAX}, ≤ {STEPS} steps\n")

    from mlipflows.potentials import load_potential

    load_potential(args.model, device=args.device)  # (a) keeps one warm model per worker process
    t_a, e_a, steps = run_mlipflows(structures, ids, args.model, args.device)
    t_c, e_c = run_ase_loop(structures, args.model, args.device)
    rows = [("a  mlipflows relax_flow (batched)", t_a), ("c  ASE loop, one calculator", t_c)]
    e_b = None
    if not args.skip_atomate2 and args.model == "sevennet-0":
        t_b, e_b = run_atomate2(structures, args.device)
        rows.insert(1, ("b  atomate2 ForceFieldRelaxMaker", t_b))

    n = len(structures)
    print(f"{'method':38s} {'wall (s)':>9s} {'structures/s':>13s}")
    for name, t in rows:
        print(f"{name:38s} {t:9.1f} {n / t:13.3f}")
    print(f"\nmean FIRE steps (a): {np.mean(steps):.1f}")
    if e_b is not None:
        print(f"speed-up a vs b (atomate2): {t_b / t_a:.2f}x")
        print(f"max |ΔE| a-b: {1000 * np.max(np.abs(np.subtract(e_a, e_b))):.3f} meV/atom")
    print(f"speed-up a vs c (ASE loop): {t_c / t_a:.2f}x")
    print(f"max |ΔE| a-c: {1000 * np.max(np.abs(np.subtract(e_a, e_c))):.3f} meV/atom")


if __name__ == "__main__":
    main()
