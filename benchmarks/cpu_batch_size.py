"""CPU cost per atom of one batched force call vs the batch size, for each model.

On a GPU a bigger batch is faster per atom; on a CPU it is not for the equivariant models:
their edge tensors outgrow the caches and the backward pass zero-fills whole buffers, so a
1,024-atom call of SevenNet-0 costs more per atom than a 256-atom one. This measures it on the
fc3 supercells of a κ run (64-atom rattled NaCl cells, as phono3py displaces them), sizes
interleaved and repeated so that machine load hits every size alike, and prints each size's
median ms/atom and its ratio to the best size, next to the edges per call (what the engine's
budget counts).

    OMP_NUM_THREADS=1 python benchmarks/cpu_batch_size.py --models sevennet-0 chgnet-0.3.0 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

warnings.filterwarnings("ignore")

SIZES = (1, 2, 4, 8, 16, 32)  # 64-atom cells per call


def cells(n: int, seed: int) -> list:
    import numpy as np
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        atoms = bulk("NaCl", "rocksalt", 5.64, cubic=True) * (2, 2, 2)
        atoms.positions += rng.normal(0, 0.03, atoms.positions.shape)
        out.append(AseAtomsAdaptor.get_structure(atoms))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["sevennet-0", "sevennet-l3i5", "chgnet-0.3.0", "mpnice-sevennet-0"]
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from mlipflows.engine import Batch
    from mlipflows.engine.neighbors import neighbor_list
    from mlipflows.potentials import load_potential

    torch.set_num_threads(args.threads)
    print(f"torch threads {args.threads}; 64-atom NaCl cells; median of {args.repeats} interleaved repeats\n")
    for model in args.models:
        pot = load_potential(model)
        batches = {n: Batch.from_structures(cells(n, seed=n)) for n in SIZES}
        edges = {n: int(neighbor_list(b, pot.cutoff).edge_index.shape[1]) for n, b in batches.items()}
        pot.evaluate(batches[SIZES[0]], compute_stress=False)  # warm-up
        per_atom: dict[int, list[float]] = {n: [] for n in SIZES}
        for _ in range(args.repeats):
            for n, batch in batches.items():
                t0 = time.perf_counter()
                pot.evaluate(batch, compute_stress=False)
                per_atom[n].append((time.perf_counter() - t0) / (64 * n) * 1e3)
        med = {n: statistics.median(v) for n, v in per_atom.items()}
        best = min(med.values())
        print(f"{model}:")
        print("  atoms/call  edges/call  ms/atom  vs best")
        for n in SIZES:
            print(f"  {64 * n:10d}  {edges[n]:10d}  {med[n]:7.2f}  {med[n] / best:6.2f}x")
        print()


if __name__ == "__main__":
    main()
