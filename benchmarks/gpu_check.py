"""The CUDA path on one GPU: agreement with the CPU, the batching gain, TorchSim side by side.

1. agreement: every model evaluates the same structures batched on the CPU, batched on the GPU
   and one at a time on the GPU; prints the largest |ΔE|/atom, |ΔF| and |Δσ| of each pair.
2. relaxation agreement: ``engine.relax`` of the same structures on the CPU and the GPU.
3. static throughput (SevenNet-0 on the GPU): one structure per call, our batched engine, and
   TorchSim's ``static`` with its autobatcher; atoms/s and ratios, measured in one run.
4. relaxation throughput: our engine vs TorchSim's ``optimize`` (FIRE + Fréchet cell filter,
   same fmax and step limit); structures/s, ratios, and the largest |ΔE|/atom between them.
5. the rest of the CUDA path: one training epoch of each of our architectures on both devices
   (same seed: the epoch's mean loss must agree), and the ASE calculator with ``+zbl`` (a pair
   inside the repulsive core) and ``+d3`` on both devices.

TorchSim needs Python >= 3.12 and is not a dependency: parts 3-4 time it when it imports.

    python benchmarks/gpu_check.py [--device cuda] [--n-static 512] [--n-relax 256] [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from pymatgen.core import Structure  # noqa: E402
from structures import mixed_structures  # noqa: E402

# float32 models: a sum over ~1e2 terms per atom agrees between devices to ~1e-5 relative
TOL = {"energy_per_atom": 1e-4, "forces": 2e-3, "stress": 1e-4}
MODELS = [
    "sevennet-0",
    "sevennet-l3i5",
    "chgnet-0.3.0",
    "mpnice-si-mlearn",
    "geodite-si-mlearn",
    "nequip-lr-si-mlearn",
]


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan")


def si_structures(n: int, seed: int = 0) -> list[Structure]:
    """Rattled, strained Si diamond cells of 8-64 atoms (our packaged models know only Si)."""
    rng = np.random.default_rng(seed)
    base = Structure.from_spacegroup("Fd-3m", [[5.43, 0, 0], [0, 5.43, 0], [0, 0, 5.43]], ["Si"], [[0, 0, 0]])
    out = []
    for k in range(n):
        s = base * [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2)][k % 4]
        s = Structure(
            s.lattice.matrix @ (np.eye(3) + rng.normal(scale=0.01, size=(3, 3))),
            s.species,
            s.cart_coords + rng.normal(scale=0.05, size=(len(s), 3)),
            coords_are_cartesian=True,
        )
        out.append(s)
    return out


def evaluate(structures: list[Structure], pot: Any, one_by_one: bool = False) -> list[Any]:
    from mlipflows.engine import BatchBudget, static

    budget = BatchBudget(max_atoms=1, max_edges=1) if one_by_one else None
    return static(structures, pot, budget=budget, sanity=None)


def worst(a: list[Any], b: list[Any]) -> dict[str, float]:
    de = max(abs(x.energy - y.energy) / len(x.structure) for x, y in zip(a, b, strict=True))
    df = max(float(np.abs(x.forces - y.forces).max()) for x, y in zip(a, b, strict=True))
    ds = max(float(np.abs(x.stress - y.stress).max()) for x, y in zip(a, b, strict=True))
    return {"energy_per_atom": de, "forces": df, "stress": ds}


def agreement(device: str, n: int) -> dict[str, Any]:
    from mlipflows.potentials import load_potential

    mixed, _ = mixed_structures(n)
    out: dict[str, Any] = {}
    for name in MODELS:
        structures = si_structures(n) if name.endswith("si-mlearn") else mixed
        try:
            cpu, gpu = load_potential(name, "cpu"), load_potential(name, device)
        except Exception as exc:  # a wheel missing on this machine: report the rest
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{name:<22} unavailable: {out[name]['error']}")
            continue
        on_cpu, batched = evaluate(structures, cpu), evaluate(structures, gpu)
        single = evaluate(structures, gpu, one_by_one=True)
        bad = [r.error for r in on_cpu + batched + single if r.error]
        if bad:
            out[name] = {"error": bad[0]}
            print(f"{name:<22} FAILED: {bad[0]}")
            continue
        row = {"cpu_vs_gpu": worst(on_cpu, batched), "gpu_batched_vs_single": worst(batched, single)}
        row["ok"] = all(v <= TOL[k] for pair in row.values() for k, v in pair.items())
        out[name] = row
        print(
            f"{name:<22} cpu vs gpu {fmt(row['cpu_vs_gpu'])}   batched vs single "
            f"{fmt(row['gpu_batched_vs_single'])}   {'ok' if row['ok'] else 'DISAGREE'}"
        )
    return out


def fmt(d: dict[str, float]) -> str:
    return f"E/atom {d['energy_per_atom']:.1e} F {d['forces']:.1e} σ {d['stress']:.1e}"


def relax_agreement(device: str, n: int) -> dict[str, Any]:
    from mlipflows.engine import relax
    from mlipflows.potentials import load_potential

    structures, _ = mixed_structures(n, seed=1)
    cpu = relax(structures, load_potential("sevennet-0", "cpu"))
    gpu = relax(structures, load_potential("sevennet-0", device))
    de = max(abs(a.energy - b.energy) / len(a.structure) for a, b in zip(cpu, gpu, strict=True))
    row = {
        "n": n,
        "max_de_per_atom": de,
        "converged_cpu": sum(r.converged for r in cpu),
        "converged_gpu": sum(r.converged for r in gpu),
        "steps_cpu": sum(r.n_steps for r in cpu),
        "steps_gpu": sum(r.n_steps for r in gpu),
    }
    print(
        f"relax sevennet-0 x{n}: max |ΔE|/atom cpu vs gpu {de:.1e} eV; converged "
        f"{row['converged_cpu']}/{row['converged_gpu']}; steps {row['steps_cpu']}/{row['steps_gpu']}"
    )
    return row


def torchsim_model(device: str) -> Any | None:
    try:
        import torch_sim  # noqa: F401
        from sevenn.torchsim import SevenNetModel
    except Exception as exc:
        print(f"TorchSim unavailable ({type(exc).__name__}: {exc}); timing ours alone")
        return None
    # its own copy of the same checkpoint: SevenNetModel switches the module it wraps to
    # batch mode and sevenn's type map, which our potential's copy must not see
    return SevenNetModel("7net-0", device=device, dtype=torch.float32)


def torchsim_batcher(kind: str, ts_model: Any, max_atoms: int) -> Any:
    """TorchSim's autobatcher: its own memory estimation when max_atoms is 0, else a preset cap.

    The estimation doubles a probe batch until the GPU runs out of memory (85.7 s of a 0.8 s
    job on an H200); TorchSim's docs recommend presetting ``max_memory_scaler`` to skip it.
    """
    if max_atoms <= 0:
        return True
    import torch_sim as ts

    cls = ts.BinningAutoBatcher if kind == "static" else ts.InFlightAutoBatcher
    return cls(ts_model, memory_scales_with="n_atoms", max_memory_scaler=max_atoms)


def static_throughput(device: str, n: int, ts_max_atoms: int = 0, single: bool = True) -> dict[str, Any]:
    from mlipflows.potentials import load_potential

    structures, _ = mixed_structures(n, seed=2)
    atoms = sum(len(s) for s in structures)
    pot = load_potential("sevennet-0", device)
    evaluate(structures[:8], pot)  # warm-up: kernels, allocator
    timings: dict[str, float] = {}
    peaks: dict[str, float] = {}
    modes = (("ours, one per call", True), ("ours, batched", False))
    for label, one in modes if single else modes[1:]:
        sync(device)
        reset_peak(device)
        t0 = time.perf_counter()
        res = evaluate(structures, pot, one_by_one=one)
        sync(device)
        timings[label] = time.perf_counter() - t0
        peaks[label] = peak_gib(device)
        assert all(r.error is None for r in res), [r.error for r in res if r.error][:1]
    ts_model = torchsim_model(device)
    if ts_model is not None:
        import torch_sim as ts

        ts.static(structures[:8], ts_model)
        sync(device)
        reset_peak(device)
        t0 = time.perf_counter()
        batcher = torchsim_batcher("static", ts_model, ts_max_atoms)
        props = ts.static(structures, ts_model, autobatcher=batcher)
        sync(device)
        timings["TorchSim static"] = time.perf_counter() - t0
        peaks["TorchSim static"] = peak_gib(device)
        ref = evaluate(structures, pot)
        de = max(
            abs(float(p["potential_energy"]) - r.energy) / len(r.structure)
            for p, r in zip(props, ref, strict=True)
        )
        print(f"  TorchSim vs ours: max |ΔE|/atom {de:.1e} eV")
    # the neighbour list is built on the CPU (vesin) and copied over: its share of a GPU call
    from mlipflows.engine import Batch
    from mlipflows.engine.neighbors import neighbor_list

    batch = Batch.from_structures(structures, device=device)
    t0 = time.perf_counter()
    neighbor_list(batch, pot.cutoff)
    sync(device)
    nl_s = time.perf_counter() - t0
    base = timings["ours, batched"]
    print(f"static sevennet-0, {n} structures, {atoms} atoms:")
    print(f"  neighbour list alone (CPU vesin, all structures once): {nl_s:.2f} s, {nl_s / base:.0%} of ours")
    for label, t in timings.items():
        print(
            f"  {label:<20} {t:8.2f} s  {atoms / t:10.0f} atoms/s  {t / base:6.2f}x ours batched"
            f"  peak {peaks[label]:.1f} GiB"
        )
    return {"n": n, "atoms": atoms, "seconds": timings, "peak_gib": peaks, "neighbour_list_s": nl_s}


def relax_throughput(
    device: str, n: int, fmax: float = 0.05, steps: int = 500, ts_max_atoms: int = 0
) -> dict[str, Any]:
    from mlipflows.engine import RelaxSettings, relax
    from mlipflows.potentials import load_potential

    structures, _ = mixed_structures(n, seed=3)
    pot = load_potential("sevennet-0", device)
    relax(structures[:4], pot, RelaxSettings(fmax=fmax, max_steps=5))  # warm-up
    sync(device)
    reset_peak(device)
    t0 = time.perf_counter()
    ours = relax(structures, pot, RelaxSettings(fmax=fmax, max_steps=steps))
    sync(device)
    timings = {"ours": time.perf_counter() - t0}
    peaks = {"ours": peak_gib(device)}
    row: dict[str, Any] = {"n": n, "converged_ours": sum(r.converged for r in ours)}
    ts_model = torchsim_model(device)
    if ts_model is not None:
        import torch_sim as ts

        converged = ts.generate_force_convergence_fn(force_tol=fmax, include_cell_forces=True)
        kwargs = {
            "optimizer": ts.Optimizer.fire,
            "convergence_fn": converged,
            "init_kwargs": {"cell_filter": ts.CellFilter.frechet},
        }
        ts.optimize(
            structures[:4],
            ts_model,
            max_steps=5,
            autobatcher=torchsim_batcher("relax", ts_model, ts_max_atoms),
            **kwargs,
        )
        sync(device)
        reset_peak(device)
        t0 = time.perf_counter()
        batcher = torchsim_batcher("relax", ts_model, ts_max_atoms)
        final = ts.optimize(structures, ts_model, max_steps=steps, autobatcher=batcher, **kwargs)
        sync(device)
        timings["TorchSim optimize"] = time.perf_counter() - t0
        peaks["TorchSim optimize"] = peak_gib(device)
        energy = final.energy.detach().cpu().numpy()
        de = [abs(float(e) - r.energy) / len(r.structure) for e, r in zip(energy, ours, strict=True)]
        row["max_de_per_atom_vs_torchsim"] = max(de)
        row["median_de_per_atom_vs_torchsim"] = float(np.median(de))
    print(
        f"relax sevennet-0, {n} structures, fmax {fmax}, ≤{steps} steps "
        f"({row['converged_ours']} converged ours):"
    )
    for label, t in timings.items():
        print(
            f"  {label:<20} {t:8.2f} s  {n / t:8.2f} structures/s  {t / timings['ours']:6.2f}x ours"
            f"  peak {peaks[label]:.1f} GiB"
        )
    if "max_de_per_atom_vs_torchsim" in row:
        print(
            f"  |ΔE|/atom ours vs TorchSim: median {row['median_de_per_atom_vs_torchsim']:.1e}, "
            f"max {row['max_de_per_atom_vs_torchsim']:.1e} eV"
        )
    row["seconds"], row["peak_gib"] = timings, peaks
    return row


def training_and_wrappers(device: str) -> dict[str, Any]:
    import tempfile

    from ase.build import bulk

    from mlipflows.potentials.ase_calculator import MlipflowsCalculator
    from mlipflows.training import DatasetSpec, TrainConfig, train

    data = Path(__file__).parents[1] / "tests" / "data" / "training" / "si_mlearn_small.json.gz"
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("mpnice", "geodite", "nequip_lr"):
            loss = {}
            for dev in ("cpu", device):
                cfg = TrainConfig(
                    architecture=arch,
                    model={"cutoff": 4.0},
                    datasets=[DatasetSpec(path=data, head="pbe", validation_fraction=0.34)],
                    epochs=1,
                    batch_size=2,
                    warmup_steps=0,
                    device=dev,
                    output=Path(tmp) / f"{arch}-{dev}.pt",
                )
                loss[dev] = train(cfg, show_progress=False).history[-1]["train_total"]
            rel = abs(loss[device] - loss["cpu"]) / abs(loss["cpu"])
            out[f"train {arch}"] = {"loss": loss, "relative_difference": rel, "ok": rel < 1e-3}
            print(
                f"train {arch:<10} epoch-1 loss cpu {loss['cpu']:.6g} gpu {loss[device]:.6g} (rel {rel:.1e})"
            )
    cu = bulk("Cu", "fcc", 3.61, cubic=True)
    cu.positions[1] = cu.positions[0] + [1.2, 0.0, 0.0]  # inside Cu's 1.32 Å core: ZBL acts
    for spec in ("sevennet-0+zbl", "sevennet-0+d3"):
        res = {}
        for dev in ("cpu", device):
            atoms = cu.copy()
            atoms.calc = MlipflowsCalculator(spec, device=dev)
            res[dev] = (atoms.get_potential_energy(), atoms.get_forces())
        de = abs(res[device][0] - res["cpu"][0]) / len(cu)
        df = float(np.abs(res[device][1] - res["cpu"][1]).max())
        ok = de <= TOL["energy_per_atom"] and df <= TOL["forces"]
        out[spec] = {"energy_per_atom": de, "forces": df, "ok": ok}
        print(f"ASE {spec:<16} cpu vs gpu E/atom {de:.1e} F {df:.1e}   {'ok' if ok else 'DISAGREE'}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n-agree", type=int, default=24)
    parser.add_argument("--n-static", type=int, default=512)
    parser.add_argument("--n-relax", type=int, default=256)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--parts", default="12345", help="which parts to run, e.g. 34")
    parser.add_argument(
        "--ts-max-atoms",
        type=int,
        default=0,
        help="TorchSim autobatcher cap in atoms (0: its own OOM-probing estimation)",
    )
    parser.add_argument("--no-single", action="store_true", help="skip the one-per-call static run")
    args = parser.parse_args()
    if args.device.startswith("cuda"):
        print(f"{torch.cuda.get_device_name()} · torch {torch.__version__}")
    report: dict[str, Any] = {"device": args.device, "torch": torch.__version__}
    parts = {
        "1": ("agreement", lambda: agreement(args.device, args.n_agree)),
        "2": ("relax_agreement", lambda: relax_agreement(args.device, args.n_agree)),
        "3": (
            "static",
            lambda: static_throughput(args.device, args.n_static, args.ts_max_atoms, not args.no_single),
        ),
        "4": ("relax", lambda: relax_throughput(args.device, args.n_relax, ts_max_atoms=args.ts_max_atoms)),
        "5": ("training_and_wrappers", lambda: training_and_wrappers(args.device)),
    }
    for key in args.parts:
        name, run = parts[key]
        try:
            report[name] = run()
        except Exception as exc:  # one broken part must not hide the others' numbers
            report[name] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"{name} FAILED: {type(exc).__name__}: {exc}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
