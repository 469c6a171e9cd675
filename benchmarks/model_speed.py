"""Speed of our models (MPNICE-, Geodite-, NequIP-LR-style) vs SevenNet-0 and SevenNet-l3i5: atom-steps/s.

Evaluates the same rattled Si diamond supercells (64, 216 and 512 atoms) with each model,
one structure per call, after a warm-up call, and prints the median atom-steps/s plus the
parameter counts. Also times our model with its electrostatics switched off (same weights,
Ewald skipped) to show what the charge pipeline costs.

    python benchmarks/model_speed.py [--threads 1] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

warnings.filterwarnings("ignore")


def structures() -> list:
    from ase.build import bulk
    from pymatgen.io.ase import AseAtomsAdaptor

    out = []
    for n in (2, 3, 4):
        atoms = bulk("Si", "diamond", 5.43, cubic=True) * (n, n, n)
        atoms.rattle(0.05, seed=n)
        out.append(AseAtomsAdaptor.get_structure(atoms))
    return out


def atom_steps_per_second(pot, structure, repeats: int) -> float:
    import torch

    from mlipflows.engine import Batch

    batch = Batch.from_structures([structure])
    pot.evaluate(batch, compute_stress=False)  # warm-up (allocations, lazy init)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pot.evaluate(batch, compute_stress=False)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return len(structure) / statistics.median(times)


def n_parameters(pot) -> int:
    module = getattr(pot, "model", None)
    if module is None:
        return -1
    return sum(p.numel() for p in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    import copy

    import torch

    from mlipflows.models.potential import ModelPotential
    from mlipflows.potentials import load_potential

    torch.set_num_threads(args.threads)
    ours = load_potential("mpnice-si-mlearn", device=args.device)
    assert isinstance(ours, ModelPotential)
    no_es_model = copy.deepcopy(ours.model)
    no_es_model.cfg.electrostatics = False
    no_es = ModelPotential(no_es_model, ours.card, device=args.device, dtype=ours.dtype)
    models = {"mpnice-si-mlearn": ours, "mpnice (no Ewald)": no_es}
    for name in ("geodite-si-mlearn", "nequip-lr-si-mlearn", "sevennet-0", "sevennet-l3i5"):
        try:
            models[name] = load_potential(name, device=args.device)
        except Exception as exc:  # sevenn or a packaged checkpoint missing: report the rest
            print(f"{name} unavailable: {exc}")
    print(f"device {args.device}, {args.threads} thread(s), median of {args.repeats} calls")
    for name, pot in models.items():
        print(f"{name:<20} parameters {n_parameters(pot):>10,}  cutoff {pot.cutoff:.1f} Å")
    header = f"{'atoms':>6} " + " ".join(f"{n:>20}" for n in models)
    print("atom-steps/s (energy + forces)")
    print(header)
    for s in structures():
        rates = [atom_steps_per_second(p, s, args.repeats) for p in models.values()]
        print(f"{len(s):>6} " + " ".join(f"{r:>20.0f}" for r in rates))


if __name__ == "__main__":
    main()
