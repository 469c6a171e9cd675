"""Rehearse a GPU machine's Python environment here, before spending device time on it.

Links into OUT exactly the local installs of the distributions that the device image has
(names in IMAGE, whitespace- or comma-separated) plus those whose wheels ``gpu_env.sh`` put in
FOLDER/whl. Running with that folder first on PYTHONPATH and ``python -S`` (no site-packages)
shows a missing carry as an ImportError on this machine, at no device cost; compiled wheels
for Python 3.12 are not exercised (the local 3.11 installs stand in for them).

    python benchmarks/gpu_env_simulate.py --image device-packages.txt --folder .gpu --out /tmp/sim
    PYTHONPATH=/tmp/sim:.gpu/pure:. python -S benchmarks/gpu_check.py --device cpu --n-agree 2
"""

from __future__ import annotations

import argparse
import email
import importlib.metadata as md
import re
import shutil
import zipfile
from pathlib import Path

UNPACKED = {"sevenn", "chgnet"}  # gpu_env.sh unpacks these into FOLDER/pure


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def carried(folder: Path) -> set[str]:
    names = set()
    for wheel in folder.glob("whl/*.whl"):
        with zipfile.ZipFile(wheel) as z:
            meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
            names.add(norm(email.message_from_bytes(z.read(meta))["Name"]))
    return names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, required=True, help="the device image's package names")
    parser.add_argument("--folder", type=Path, default=Path(".gpu"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu-sim"))
    args = parser.parse_args()
    image = {norm(n) for n in re.split(r"[\s,]+", args.image.read_text()) if n}
    want = (image | carried(args.folder)) - UNPACKED
    if "nvidia-ml-py" in image:  # the image's pynvml; nvidia-ml-py3's stands in for it here
        want.add("nvidia-ml-py3")
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    linked = set()
    for dist in md.distributions():
        name = norm(dist.metadata["Name"])
        if name not in want or name in linked:
            continue
        linked.add(name)
        tops = {str(f).split("/")[0] for f in dist.files or []}
        for top in tops - {"__pycache__"}:
            src, dst = Path(str(dist.locate_file(top))), args.out / top
            if not top.startswith("..") and src.exists() and not dst.exists():
                dst.symlink_to(src)
    print(f"{len(linked)} distributions linked into {args.out}")
    print("carried but not installed here (not rehearsed):", sorted(carried(args.folder) - linked))


if __name__ == "__main__":
    main()
