"""The same force constants through two Wigner codes: phono3py 4.x ``smm19`` vs the original.

The κ_SRME references (k_SRME, Matbench Discovery) computed κ with phono3py 3.x's original
Wigner RTA (``conductivity_type="wigner"`` in k_SRME's phono3py, ``transport_type="MS-SMM19"``
in 3.30, which MBD pins), which phono3py ≥ 3.31 replaced by an in-tree ``smm19``. mlipflows
runs phono3py 4.x. This script runs the ``phonondb-v2`` protocol on the given phononDB
materials, keeps our κ (smm19), writes the force constants, and has a second Python
environment with phono3py 3.30.0 compute κ from the very same fc2/fc3, so the difference is
the Wigner code alone.

    python -m venv /tmp/refenv && /tmp/refenv/bin/pip install "phono3py==3.30.0" "phonopy>=3.5,<3.6"
    python benchmarks/kappa_wigner_codes.py --ids mp-1132 mp-10695 --ref-python /tmp/refenv/bin/python
"""

from __future__ import annotations

import argparse
import json
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
folder, mesh = sys.argv[1], [int(x) for x in sys.argv[2].split(",")]
ph3 = phono3py.load(f"{folder}/phono3py_params.yaml", fc2_filename=f"{folder}/fc2.hdf5",
                    fc3_filename=f"{folder}/fc3.hdf5", produce_fc=False, symmetrize_fc=False,
                    log_level=0)
ph3.mesh_numbers = mesh
ph3.init_phph_interaction(symmetrize_fc3q=False)
ph3.run_thermal_conductivity(temperatures=[300.0], is_isotope=True, transport_type="MS-SMM19",
                             boundary_mfp=1e6, log_level=0)
total = np.asarray(ph3.thermal_conductivity.get_extra_kappa_output()["kappa_TOT_RTA"])[0, 0, :3].mean()
print(json.dumps({"phono3py": phono3py.__version__, "kappa_tot_avg": float(total)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sevennet-0")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/phonondb-kappa103"))
    parser.add_argument("--ids", nargs="+", default=["mp-1132", "mp-10695"])
    parser.add_argument("--ref-python", default="/tmp/refenv/bin/python")
    parser.add_argument("--batch-atoms", type=int, default=1024)
    args = parser.parse_args()

    import numpy as np
    import phono3py
    from phono3py.file_IO import write_fc2_to_hdf5, write_fc3_to_hdf5

    from mlipflows.bench.kappa import load_phonondb, protocol_maker

    maker = protocol_maker(args.model, batch_atoms=args.batch_atoms)
    potential = maker.chunk.potential()
    budget = maker.chunk.budget(potential)
    print(f"{'material':16s} {'κ DFT':>9s} {'4.x smm19':>10s} {'3.30 wigner':>12s} {'Δ (%)':>7s}")
    for r in load_phonondb(args.data, ids=args.ids):
        (_, ph3, result, error, gate, _), *_ = maker.compute(
            [r.structure], potential, budget, [r.fc3_supercell], [r.fc2_supercell], [r.q_mesh]
        )
        label = f"{r.material_id} {r.name}"
        if result is None:
            print(f"{label:16s} no κ: {error or (gate.reason if gate else 'skipped')}", flush=True)
            continue
        ours = float(result.kappa_tot_avg[0])
        with tempfile.TemporaryDirectory() as tmp:
            ph3.save(f"{tmp}/phono3py_params.yaml")
            write_fc2_to_hdf5(ph3.fc2, filename=f"{tmp}/fc2.hdf5")
            write_fc3_to_hdf5(ph3.fc3, filename=f"{tmp}/fc3.hdf5")
            mesh = ",".join(str(m) for m in r.q_mesh)
            run = subprocess.run(
                [args.ref_python, "-c", REFERENCE, tmp, mesh], capture_output=True, text=True, check=False
            )
        if run.returncode != 0:
            print(f"{label:16s} reference failed: {run.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            continue
        ref = json.loads(run.stdout.strip().splitlines()[-1])
        diff = 100 * (ours - ref["kappa_tot_avg"]) / ref["kappa_tot_avg"]
        dft = float(np.ravel(r.reference.kappa_tot_avg)[0])
        print(f"{label:16s} {dft:9.3f} {ours:10.3f} {ref['kappa_tot_avg']:12.3f} {diff:+7.2f}", flush=True)
    print(f"ours: phono3py {phono3py.__version__} smm19; reference: {args.ref_python}, original wigner")


if __name__ == "__main__":
    main()
