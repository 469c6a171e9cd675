#!/usr/bin/env bash
# Build the folder that a lent GPU machine needs to run our code: Python 3.12 wheels of what its
# image lacks (it has torch, e3nn, numpy, scipy, pandas, h5py, matplotlib, typer, rich, and no
# network), plus sevenn and chgnet unpacked without the checkpoints nobody loads there (their
# wheels alone are 57 MB; a device call carries 64 MiB with the repository).
#
#   benchmarks/gpu_env.sh check   -> .gpu/   for benchmarks/gpu_check.py (TorchSim included)
#   benchmarks/gpu_env.sh kappa   -> .gpuk/  for `mlipflows bench kappa --device cuda`
#
# Both folders must be in .git/info/exclude; the device commands are in benchmarks/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: gpu_env.sh check|kappa}
out=$([ "$mode" = check ] && echo .gpu || echo .gpuk)
grep -qx "/$out/" .git/info/exclude 2>/dev/null || echo "/$out/" >>.git/info/exclude
rm -rf "$out" /tmp/gpu-pure && mkdir -p "$out/whl" "$out/pure" /tmp/gpu-pure

pins() { .venv/bin/python -c 'import importlib.metadata as m, sys
print(" ".join(f"{d}=={m.version(d)}" for d in sys.argv[1:]))' "$@"; }
dl() {
    local dest=$1; shift
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$dest" "$@"
}

# what importing the engine, the potentials and pymatgen needs beyond the image
dl "$out/whl" $(pins ase monty orjson palettable phonopy pymatgen pymatgen-core \
    pymatgen-io-validation pymongo ruamel.yaml spglib vesin uncertainties annotated-types \
    typing-inspection dnspython phonors pydantic pydantic-core)  # phonors: phono3py's default
if [ "$mode" = check ]; then
    # TorchSim imports PyTables at import time; its Warp kernels (nvalchemi, 150 MB) are optional
    dl "$out/whl" torch-sim-atomistic==0.6.2 tables==3.11.1 blosc2==4.15.0 numexpr==2.14.2 \
        ndindex==1.10.1 $(pins torch-dftd)  # torch-dftd: the +d3 check
    packages="sevenn chgnet"
    cp .venv/lib/python3*/site-packages/nvidia_smi.py "$out/pure/"  # chgnet imports it; sdist only
else
    # jobflow/maggma (maggma's Mongo stores import paramiko) and phono3py for the Makers
    dl "$out/whl" $(pins jobflow maggma montydb mongomock-ng \
        pydantic-settings pydash sentinels python-dotenv phono3py seekpath paramiko cryptography \
        bcrypt pynacl invoke cffi pycparser pytz)
    packages="sevenn"
    cp -r ../shared/data/phonondb-kappa103 "$out/phonondb"
fi
dl /tmp/gpu-pure $(pins $packages)
for w in /tmp/gpu-pure/*.whl; do (cd "$out/pure" && unzip -q "$w"); done
rm -rf "$out"/pure/sevenn/pair_e3gnn "$out"/pure/sevenn/*.so \
    "$out"/pure/sevenn/pretrained_potentials/{SevenNet_0__22May2024,SevenNet_MF_0,SevenNet_l3i5} \
    "$out"/pure/chgnet/pretrained/{0.2.0,r2scan} "$out"/pure/chgnet/graph/fast_converter_libraries
du -sh "$out"
