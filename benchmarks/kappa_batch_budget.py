"""One κ_SRME material with the old CPU batch budget and the model's own, side by side.

The old CPU default put up to 50,000 edges in one call (the κ bench ran with 1,024 atoms);
SevenNet's per-atom cost grows with the batch (``benchmarks/cpu_batch_size.py``), so its
budget is now 4,000 edges (8,000 when the table in analysis/kappa was measured). Runs each
material through the ``phonondb-v3`` Maker with both budgets, alternating, and prints every
phase's seconds, the ratio of the fc3 forces and of the total, and both κ (equal up to
float32 rounding of the forces).

    OMP_NUM_THREADS=1 python benchmarks/kappa_batch_budget.py --model sevennet-0 --ids mp-22903
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from kappa_profile import profile

warnings.filterwarnings("ignore")

OLD = (1024, 50_000)  # atoms, edges per call: the κ runs before the change


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/phonondb-kappa103"))
    parser.add_argument("--ids", nargs="+", default=["mp-22903"])
    args = parser.parse_args()

    from mlipflows.bench.kappa import load_phonondb
    from mlipflows.potentials import load_potential

    edges = load_potential(args.model).cpu_max_edges
    order = ["relaxation", "fc2 forces", "fc3 forces", "fc3 + κ solve", "total"]
    print(f"{'material':16s} {'budget':>18s} " + " ".join(f"{p:>13s}" for p in order) + "  κ (W/mK)")
    for record in load_phonondb(args.data, ids=args.ids):
        runs = {}
        for label, atoms, max_edges in (("1024 at / 50k ed", *OLD), (f"model's ({edges} ed)", None, None)):
            clock, doc = profile(record, args.model, True, atoms, max_edges)
            runs[label] = (clock, doc.kappa_tot_avg[0] if doc.kappa_tot_avg else float("nan"))
            cells = " ".join(f"{clock.get(p, 0.0):13.1f}" for p in order)
            name = f"{record.material_id} {record.name}"
            print(f"{name:16s} {label:>18s} {cells}  {runs[label][1]:.6f}", flush=True)
        (old, k_old), (new, k_new) = runs.values()
        print(
            f"  fc3 forces {old['fc3 forces'] / new['fc3 forces']:.2f}x faster, total "
            f"{old['total'] / new['total']:.2f}x; κ relative difference {abs(k_new / k_old - 1):.1e}"
        )


if __name__ == "__main__":
    main()
