"""Where one κ_SRME material's time goes, with and without the fc2 stability gate.

Runs phononDB materials through the ``phonondb-v3`` protocol Maker (relaxation, fc2 forces,
the gate, fc3 forces, the κ solve) twice, side by side: as the protocol runs it (fc2 first;
imaginary modes or a broken space group skip fc3 and κ) and with the gate off (fc3 and κ
computed for every material, as ``phonondb-v1`` did). Prints the wall time of every phase and
κ of both runs, which must be equal wherever the gate lets a material through.

    python benchmarks/kappa_profile.py --model sevennet-0 --ids mp-1138 mp-1000
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

PHASES = {  # name in mlipflows.makers.kappa → phase label
    "produce_fc2": "fc2 + gate",
    "mesh_frequencies": "fc2 + gate",
    "conductivity": "fc3 + κ solve",
}


def timed(fn: Callable[..., Any], label: str, clock: dict[str, float]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            clock[label] += time.perf_counter() - t0

    return wrapper


def profile(
    record: Any, model: str, gate: bool, batch_atoms: int | None, max_edges: int | None = None
) -> tuple[dict[str, float], Any]:
    """Phase → seconds and the document for one material (``max_edges``: None = the model's)."""
    import mlipflows.makers.kappa as km
    from mlipflows.bench.kappa import protocol_maker
    from mlipflows.potentials import load_potential

    clock: dict[str, float] = defaultdict(float)
    maker = protocol_maker(model, batch_atoms=batch_atoms)
    maker.require_stable = gate
    maker.chunk.max_edges = max_edges
    maker.resume_forces = False  # a second run of the material must compute, not read the first's
    saved = {name: getattr(km, name) for name in (*PHASES, "supercell_forces")}
    calls = iter(["fc2 forces", "fc3 forces"])  # compute() asks for fc2, then fc3 forces
    try:
        for name, label in PHASES.items():
            setattr(km, name, timed(saved[name], label, clock))
        km.supercell_forces = lambda *a, **k: timed(saved["supercell_forces"], next(calls), clock)(*a, **k)
        prepare = maker.prepare
        maker.prepare = timed(prepare, "relaxation", clock)  # type: ignore[method-assign]
        load_potential(model)  # warm: loading the weights is not the material's time
        t0 = time.perf_counter()
        doc = maker.make.original(  # type: ignore[attr-defined]
            maker,
            [record.structure],
            [record.material_id],
            [record.fc3_supercell],
            [record.fc2_supercell],
            [record.q_mesh],
        )[0]
        clock["total"] = time.perf_counter() - t0
    finally:
        for name, fn in saved.items():
            setattr(km, name, fn)
    return dict(clock), doc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/phonondb-kappa103"))
    parser.add_argument("--ids", nargs="+", default=["mp-1138", "mp-1000"])
    parser.add_argument("--batch-atoms", type=int, default=1024)
    args = parser.parse_args()

    from mlipflows.bench.kappa import load_phonondb

    order = ["relaxation", "fc2 forces", "fc2 + gate", "fc3 forces", "fc3 + κ solve", "total"]
    print(f"{'material':16s} {'gate':5s} " + " ".join(f"{p:>13s}" for p in order) + "  κ (W/mK)  state")
    for record in load_phonondb(args.data, ids=args.ids):
        for gate in (False, True):
            clock, doc = profile(record, args.model, gate, args.batch_atoms)
            kappa = doc.kappa_tot_avg[0] if doc.kappa_tot_avg else float("nan")
            cells = " ".join(f"{clock.get(p, 0.0):13.1f}" for p in order)
            label = f"{record.material_id} {record.name}"
            state = doc.state + (f" ({doc.kappa_skipped})" if getattr(doc, "kappa_skipped", None) else "")
            print(f"{label:16s} {'on' if gate else 'off':5s} {cells}  {kappa:8.3f}  {state}", flush=True)


if __name__ == "__main__":
    main()
