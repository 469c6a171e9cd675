"""Close pairs of every element a model covers, relaxed with MODEL and with MODEL+zbl.

Homonuclear pairs 0.6 Å apart in a 7 Å box, plus seeded random heteronuclear pairs (next to an
O atom), each relaxed (FIRE + Fréchet, ≤ 500 steps) with the plain model and with the repulsive
core. Prints how many end physical (state ``successful``) and lists the rest with their reason.

    python benchmarks/zbl_close_pairs.py --model sevennet-0 --n-mixed 60
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from pymatgen.core import Element, Lattice, Structure

from mlipflows.engine import RelaxSettings, relax
from mlipflows.potentials import load_potential


def close_pairs(elements: list[str], n_mixed: int, seed: int = 0) -> list[Structure]:
    box = Lattice.cubic(7.0)
    out = [Structure(box, [el, el], [[0, 0, 0], [0.6 / 7.0, 0, 0]]) for el in elements]
    rng = np.random.default_rng(seed)
    for _ in range(n_mixed):
        a, b = rng.choice(elements, 2)
        out.append(Structure(box, [a, b, "O"], [[0, 0, 0], [0.6 / 7.0, 0, 0], [0.5, 0.5, 0.5]]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--n-mixed", type=int, default=60)
    args = parser.parse_args()
    plain = load_potential(args.model)
    elements = sorted(plain.elements, key=lambda e: Element(e).Z)
    structures = close_pairs(elements, args.n_mixed)
    for spec in (args.model, f"{args.model}+zbl"):
        t0 = time.perf_counter()
        results = relax(structures, load_potential(spec), RelaxSettings(max_steps=500))
        bad = [(s, r) for s, r in zip(structures, results, strict=True) if r.state != "successful"]
        print(
            f"{spec}: {len(structures) - len(bad)} of {len(structures)} close-pair inputs relax to "
            f"physical structures ({time.perf_counter() - t0:.0f} s)"
        )
        for s, r in bad:
            print(f"  {s.composition.formula:12s} {r.state:10s} {(r.reason or '')[:110]}")


if __name__ == "__main__":
    main()
