"""Long range shown, not claimed: charge transfer and ion–dipole forces beyond the cutoff.

Reference ("truth"): exact Gaussian-charge Qeq (χ, J, σ per element; bordered float64 solve
per structure) + the Coulomb energy of the equilibrated charges + Born–Mayer repulsion
A exp(-r/ρ) between all pairs. Systems (non-periodic): a NaCl dimer plus a second fragment
(another NaCl dimer, neutral total; or a Na⁺ ion, total charge +1) with the fragment centres
d = 3–12 Å apart, random orientations. The dimer–ion energy varies as 1/d² far beyond any
local cutoff, and Qeq moves charge between the fragments at every distance.

Two MPNICE-style models with a 4 Å cutoff and identical settings are trained on the same
labelled set, one with its charge pipeline + explicit electrostatics, one without; the
script prints energy and force MAE binned by fragment separation on held-out structures and
writes them to ``--out`` (JSON).

    python benchmarks/long_range.py [--n-train 400] [--epochs 60] [--out analysis/models/long_range.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import tempfile
import warnings
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore")

CHI = {11: 0.0, 17: 3.5}  # eV/e
HARDNESS = {11: 6.0, 17: 8.0}  # eV/e²
SIGMA = {11: 1.0, 17: 1.1}  # Å
BORN_MAYER_A, BORN_MAYER_RHO = 1500.0, 0.3  # eV, Å


def reference(atoms_list: list, charges: list[float]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Energies (eV) and forces (eV/Å) of the reference model (float64, autograd forces)."""
    import torch

    from mlipflows.engine import Batch
    from mlipflows.engine.batch import segment_sum
    from mlipflows.models.electrostatics import coulomb_operator, solve_qeq
    from mlipflows.models.geometry import build_graph, forces_and_stress

    batch = Batch.from_atoms(atoms_list, dtype=torch.float64)
    graph, inputs = build_graph(batch, cutoff=6.0)
    z = batch.atomic_numbers.tolist()
    chi = torch.tensor([CHI[k] for k in z], dtype=torch.float64)
    hard = torch.tensor([HARDNESS[k] for k in z], dtype=torch.float64)
    sigma = torch.tensor([SIGMA[k] for k in z], dtype=torch.float64)
    op = coulomb_operator(graph.as_batch(), sigma)
    q = solve_qeq(op, chi, hard, torch.tensor(charges, dtype=torch.float64))
    energy = segment_sum(chi * q + 0.5 * hard * q**2, batch.system_idx, batch.n_systems) + op.energy(q)
    rep = BORN_MAYER_A * torch.exp(-graph.lengths / BORN_MAYER_RHO)
    energy = energy + 0.5 * segment_sum(rep, graph.edge_system, batch.n_systems)
    forces, _ = forces_and_stress(energy, inputs, compute_stress=False)
    counts = [len(a) for a in atoms_list]
    return energy.detach().numpy(), [f.numpy() for f in torch.split(forces.detach(), counts)]


def make_structures(n: int, seed: int) -> list[tuple]:
    """(atoms, total charge, separation Å) with random orientations and bond lengths."""
    from ase import Atoms
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        bond = rng.uniform(2.2, 2.7)
        dimer = Rotation.random(random_state=rng.integers(1 << 31)).apply([[0, 0, 0], [bond, 0, 0]])
        d = rng.uniform(3.0, 12.0)
        if k % 2 == 0:  # neutral: two dimers
            bond2 = rng.uniform(2.2, 2.7)
            second = Rotation.random(random_state=rng.integers(1 << 31)).apply([[0, 0, 0], [bond2, 0, 0]])
            second = second - second.mean(0)
            symbols, charge = "NaClNaCl", 0.0
        else:  # charged: dimer + Na⁺
            second, symbols, charge = np.zeros((1, 3)), "NaClNa", 1.0
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        pos = np.concatenate([dimer - dimer.mean(0), second + d * direction])
        if np.min([np.linalg.norm(a - b) for a in pos[:2] for b in pos[2:]]) < 2.0:
            continue  # fragments overlapping: skip
        out.append((Atoms(symbols, positions=pos, pbc=False), charge, d))
    return out


def write_labelled(path: Path, items: list[tuple]) -> None:
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write

    energies, forces = reference([a for a, _, _ in items], [q for _, q, _ in items])
    frames = []
    for (atoms, q, _), e, f in zip(items, energies, forces, strict=True):
        a = atoms.copy()
        a.info["charge"] = q
        a.calc = SinglePointCalculator(a, energy=float(e), forces=f)
        frames.append(a)
    write(path, frames, format="extxyz")


def binned_errors(model, items: list[tuple], bins: list[float]) -> list[dict]:
    import torch

    from mlipflows.engine import Batch
    from mlipflows.models.potential import predict

    energies, forces = reference([a for a, _, _ in items], [q for _, q, _ in items])
    batch = Batch.from_atoms([a for a, _, _ in items], dtype=torch.float32)
    p = predict(model, batch, compute_stress=False, total_charge=torch.tensor([q for _, q, _ in items]))
    pf = torch.split(p.forces.detach(), [len(a) for a, _, _ in items])
    rows = []
    for lo, hi in itertools.pairwise(bins):
        idx = [k for k, (_, _, d) in enumerate(items) if lo <= d < hi]
        if not idx:
            continue
        de = [abs(float(p.energy[k]) - energies[k]) / len(items[k][0]) for k in idx]
        df = np.concatenate([np.abs(pf[k].numpy() - forces[k]).ravel() for k in idx])
        rows.append(
            {
                "separation_A": f"{lo:.0f}-{hi:.0f}",
                "n": len(idx),
                "energy_mae_mev_atom": 1000 * float(np.mean(de)),
                "force_mae_ev_a": float(np.mean(df)),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=400)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--max-time-s", type=float, default=420.0, help="per model")
    parser.add_argument("--out", type=Path, default=Path("analysis/models/long_range.json"))
    args = parser.parse_args()

    import torch

    from mlipflows.models.checkpoint import load_model
    from mlipflows.training import DatasetSpec, TrainConfig, train

    torch.set_num_threads(1)
    train_items = make_structures(args.n_train, seed=0)
    test_items = make_structures(args.n_test, seed=1)
    bins = [3.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    results = {"cutoff_A": 4.0, "bins": bins, "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "train.extxyz"
        write_labelled(data, train_items)
        for label, electrostatics in (("with electrostatics", True), ("without electrostatics", False)):
            cfg = TrainConfig(
                name=f"long-range-{electrostatics}",
                model={
                    "cutoff": 4.0,
                    "n_channels": 16,
                    "n_angular": 4,
                    "hidden": 32,
                    "n_blocks": 2,
                    "electrostatics": electrostatics,
                    "zbl": False,
                },
                datasets=[DatasetSpec(path=data, validation_fraction=0.1)],
                loss={"energy": 100.0, "forces": 1.0},
                epochs=args.epochs,
                batch_size=16,
                lr=3e-3,
                max_time_s=args.max_time_s,
                output=Path(tmp) / f"{electrostatics}.pt",
            )
            result = train(cfg, show_progress=False)
            model, _ = load_model(result.checkpoint)
            rows = binned_errors(model, test_items, bins)
            results["models"][label] = {"best_epoch": result.best_epoch, "by_separation": rows}
            print(f"{label} (cutoff 4 Å, best epoch {result.best_epoch})")
            for r in rows:
                e_mae, f_mae = r["energy_mae_mev_atom"], r["force_mae_ev_a"]
                head = f"  d {r['separation_A']:>6} Å  n={r['n']:<3}"
                print(f"{head}  E MAE {e_mae:8.2f} meV/atom  F MAE {f_mae:.4f} eV/Å")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
