"""The same force constants through three Wigner codes: ours, phono3py 4's ``smm19``, phono3py 3.30.

The κ_SRME references (k_SRME, Matbench Discovery) computed κ with phono3py 3.x's original
Wigner RTA (``conductivity_type="wigner"`` in k_SRME's phono3py, ``transport_type="MS-SMM19"``
in 3.30, which MBD pins). phono3py ≥ 3.31 replaced it by an in-tree ``smm19`` with another
velocity matrix; mlipflows runs phono3py 4 with SMM19's own velocity operator restored
(:mod:`mlipflows.phonons.wigner`). This script computes κ from the very same fc2/fc3 three
ways: ours, phono3py 4's ``smm19``, and phono3py 3.30 in a second Python environment.

    python -m venv /tmp/refenv && /tmp/refenv/bin/pip install "phono3py==3.30.0" "phonopy>=3.5,<3.6"
    # phononDB materials, force constants from a model under the bench protocol
    python benchmarks/kappa_wigner_codes.py --ids mp-1132 mp-10695 --ref-python /tmp/refenv/bin/python
    # no model: phono3py's Si-PBEsol DFT force constants (tests/data/phonons), fc3 ×1 and ×8
    python benchmarks/kappa_wigner_codes.py --golden-si --ref-python /tmp/refenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import lzma
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

# runs in the phono3py 3.30 environment: κ from the saved force constants with the original
# Wigner RTA, as Matbench Discovery calls it (transport_type "MS-SMM19")
REFERENCE = """
import json, sys
import numpy as np
import phono3py
folder, mesh, isotope = sys.argv[1], [int(x) for x in sys.argv[2].split(",")], sys.argv[3] == "1"
ph3 = phono3py.load(f"{folder}/phono3py_params.yaml", fc2_filename=f"{folder}/fc2.hdf5",
                    fc3_filename=f"{folder}/fc3.hdf5", produce_fc=False, symmetrize_fc=False,
                    log_level=0)
ph3.mesh_numbers = mesh
ph3.init_phph_interaction(symmetrize_fc3q=False)
ph3.run_thermal_conductivity(temperatures=[300.0], is_isotope=isotope, transport_type="MS-SMM19",
                             boundary_mfp=1e6, log_level=0)
tc = ph3.thermal_conductivity
print(json.dumps({"phono3py": phono3py.__version__,
                  "kappa_p": float(np.asarray(tc.kappa_P_RTA)[0, 0, :3].mean()),
                  "kappa_c": float(np.asarray(tc.kappa_C)[0, 0, :3].mean())}))
"""
GOLDEN_SI = Path(__file__).parents[1] / "tests" / "data" / "phonons"


def reference_kappa(ph3, mesh: list[int], isotope: bool, ref_python: str) -> dict | None:
    """κ_P, κ_C of phono3py 3.30 from ``ph3``'s force constants (None when it fails)."""
    from phono3py.file_IO import write_fc2_to_hdf5, write_fc3_to_hdf5

    with tempfile.TemporaryDirectory() as tmp:
        ph3.save(f"{tmp}/phono3py_params.yaml")
        write_fc2_to_hdf5(ph3.fc2, filename=f"{tmp}/fc2.hdf5")
        write_fc3_to_hdf5(ph3.fc3, filename=f"{tmp}/fc3.hdf5")
        args = [ref_python, "-c", REFERENCE, tmp, ",".join(map(str, mesh)), "1" if isotope else "0"]
        run = subprocess.run(args, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        print(f"reference failed: {run.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def phono3py4_kappa(ph3, mesh: list[int], isotope: bool, transport_type: str) -> tuple[float, float]:
    """κ_P, κ_C (xx, yy, zz mean) from ``ph3``'s force constants with phono3py 4."""
    from mlipflows.phonons import wigner

    ph3.mesh_numbers = mesh
    ph3.init_phph_interaction(symmetrize_fc3q=False)
    ph3.run_thermal_conductivity(
        temperatures=[300.0], is_isotope=isotope, boundary_mfp=1e6, transport_type=transport_type
    )
    *_, kappa_p, kappa_c = wigner.parts(ph3.thermal_conductivity)
    return float(kappa_p[0, :3].mean()), float(kappa_c[0, :3].mean())


def golden_si_phono3py():
    """phono3py's Si-PBEsol VASP dataset with fc2/fc3 made as ``conductivity`` makes them."""
    import phono3py

    tmp = Path(tempfile.mkdtemp())
    for name in ("Si-PBEsol__FORCES_FC3", "Si-PBEsol__phono3py.yaml"):
        (tmp / name).write_bytes(lzma.decompress((GOLDEN_SI / f"{name}.xz").read_bytes()))
    ph3 = phono3py.load(
        tmp / "Si-PBEsol__phono3py.yaml",
        forces_fc3_filename=tmp / "Si-PBEsol__FORCES_FC3",
        produce_fc=False,
        log_level=0,
    )
    ph3.produce_fc3()
    ph3.symmetrize_fc3(options="level=1")
    ph3.symmetrize_fc2(options="level=1")
    return ph3


def compare(label: str, ph3, mesh: list[int], isotope: bool, ref_python: str) -> None:
    from mlipflows.phonons import wigner

    ours = phono3py4_kappa(ph3, mesh, isotope, wigner.register())
    smm19 = phono3py4_kappa(ph3, mesh, isotope, "smm19")
    ref = reference_kappa(ph3, mesh, isotope, ref_python)
    if ref is None:
        return
    cells = [f"{label:22s}"]
    for p, c in (ours, smm19, (ref["kappa_p"], ref["kappa_c"])):
        cells.append(f"{p:9.4f} {c:8.5f} {p + c:9.4f}")
    d_ours = 100 * (sum(ours) / (ref["kappa_p"] + ref["kappa_c"]) - 1)
    d_smm19 = 100 * (sum(smm19) / (ref["kappa_p"] + ref["kappa_c"]) - 1)
    dc_ours, dc_smm19 = (100 * (x[1] / ref["kappa_c"] - 1) for x in (ours, smm19))
    cells.append(f"{d_ours:+6.2f} {d_smm19:+6.2f}   {dc_ours:+6.2f} {dc_smm19:+6.2f}")
    print(" | ".join(cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/phonondb-kappa103"))
    parser.add_argument("--ids", nargs="+", default=["mp-1132", "mp-10695"])
    parser.add_argument("--golden-si", action="store_true", help="phono3py's Si DFT data, no model")
    parser.add_argument("--ref-python", default="/tmp/refenv/bin/python")
    parser.add_argument("--batch-atoms", type=int, default=1024)
    args = parser.parse_args()

    import phono3py

    print(
        f"{'':22s} | {'ours: κ_P':>9s} {'κ_C':>8s} {'κ_TOT':>9s} | {'4.x smm19':>9s} {'κ_C':>8s} "
        f"{'κ_TOT':>9s} | {'3.30 κ_P':>9s} {'κ_C':>8s} {'κ_TOT':>9s} | ΔTOT % ours smm19, ΔC % ours smm19"
    )
    if args.golden_si:
        for scale in (1.0, 8.0):
            for isotope in (False, True):
                ph3 = golden_si_phono3py()
                ph3.fc3 = ph3.fc3 * scale
                label = f"Si fc3×{scale:g} iso={'y' if isotope else 'n'}"
                compare(label, ph3, [9, 9, 9], isotope, args.ref_python)
    else:
        from mlipflows.bench.kappa import load_phonondb, protocol_maker

        maker = protocol_maker(args.model, batch_atoms=args.batch_atoms)
        potential = maker.chunk.potential()
        budget = maker.chunk.budget(potential)
        for r in load_phonondb(args.data, ids=args.ids):
            (_, ph3, result, error, gate, _), *_ = maker.compute(
                [r.structure], potential, budget, [r.fc3_supercell], [r.fc2_supercell], [r.q_mesh]
            )
            label = f"{r.material_id} {r.name}"
            if result is None:
                print(f"{label:22s} no κ: {error or (gate.reason if gate else 'skipped')}", flush=True)
                continue
            compare(label, ph3, list(r.q_mesh), True, args.ref_python)
    print(f"ours and smm19: phono3py {phono3py.__version__}; reference: {args.ref_python}")


if __name__ == "__main__":
    main()
