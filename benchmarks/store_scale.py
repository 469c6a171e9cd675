"""Store at scale: 10,000 result documents; filtered queries on MongoDB; embedded bulk writes.

1. MongoDB (a SecantusDB server started here on 127.0.0.1, or your server with ``--uri``):
   write N stability-like documents (with their structures, ~3 kB each), create the indexes
   (``ensure_indexes``), then time a filtered ``query_results`` (campaign + chemsys +
   e_above_hull range, sorted) and the same through ``mlipflows results`` (in process, so
   without Python start-up). The same query is timed again without the indexes for contrast.
   Target: under 2 s.
2. Embedded MontyDB: bulk writes of 1k, 2k, 5k, 10k documents into fresh stores; the time per
   document should stay flat (linear total).

    python benchmarks/store_scale.py [--n 10000] [--uri mongodb://...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

SYSTEMS = [f"{a}-O-Ti" for a in ("Ba", "Ca", "Mg", "Sr", "Zn", "Pb", "Cd", "Mn", "Fe", "Co")]


def documents(n: int, campaign: str) -> list[dict]:
    """N flat stability documents shaped like the real ones (structure included)."""
    import numpy as np
    from pymatgen.core import Lattice, Structure

    from mlipflows.schemas import ModelInfo, StabilityDocument, identity_fields

    rng = np.random.default_rng(0)
    model = ModelInfo(name="morse", version="1", checksum="analytic", source="bench")
    docs = []
    templates = {}
    for sys_ in SYSTEMS:
        a = sys_.split("-")[0]
        templates[sys_] = Structure.from_spacegroup(
            "Pm-3m", Lattice.cubic(3.9), [a, "Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0]]
        )
    for i in range(n):
        s = templates[SYSTEMS[i % len(SYSTEMS)]]
        e_hull = float(abs(rng.normal(0.0, 0.15)))
        doc = StabilityDocument(
            uuid=str(uuid.uuid4()),
            structure_id=f"cand-{i:06d}",
            campaign=campaign,
            model=model,
            device="cpu",
            structure=s.as_dict(),
            state="successful",
            hull_mode="mlip",
            e_above_hull=e_hull,
            formation_energy_per_atom=-2.0 + e_hull,
            is_stable=e_hull < 1e-6,
            **identity_fields(s),
        )
        docs.append(doc.model_dump(mode="json"))
    return docs


def timed(fn: object, repeat: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best, out


def mongo_part(uri: str, n: int) -> None:
    from typer.testing import CliRunner

    from mlipflows.commands.ui import app
    from mlipflows.results import build_criteria, query_results
    from mlipflows.store import (
        RESULTS,
        connect_store,
        ensure_indexes,
        get_job_store,
        redact_uri,
        write_results,
    )

    store = connect_store(get_job_store(uri))
    results = store.additional_stores[RESULTS]
    results._collection.drop()
    docs = documents(n, "scale")
    ensure_indexes(store)  # as `campaign run` / `campaign submit` do before any write
    t0 = time.perf_counter()
    for k in range(0, n, 1000):  # chunk jobs write about this many at once
        write_results(store, docs[k : k + 1000])
    t_write = time.perf_counter() - t0
    print(f"MongoDB ({redact_uri(uri)}): wrote {n} documents in {t_write:.1f} s")

    crit = build_criteria(campaign="scale", chemsys="Sr-Ti-O", extra={"e_above_hull": {"$lt": 0.05}})
    query = lambda: query_results(store, crit, sort="e_above_hull", exclude=("structure",))  # noqa: E731
    t_indexed, frame = timed(query)
    results._collection.drop_indexes()
    t_plain, _ = timed(query)
    ensure_indexes(store)
    args = ["results", "--uri", uri, "--campaign", "scale", "--chemsys", "Sr-Ti-O"]
    args += ["--where", "e_above_hull < 0.05", "--sort", "e_above_hull", "--format", "csv"]
    t_cli, res = timed(lambda: CliRunner().invoke(app, args))
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    print(f"  filter campaign + chemsys + e_above_hull < 0.05, sorted: {len(frame)} rows")  # type: ignore[arg-type]
    print(f"  query_results without indexes   {t_plain * 1000:8.1f} ms")
    print(f"  query_results with indexes      {t_indexed * 1000:8.1f} ms")
    print(f"  `mlipflows results` (in process) {t_cli * 1000:7.1f} ms   target < 2000 ms")
    store.close()


def embedded_part(sizes: list[int]) -> None:
    from mlipflows.store import BulkMontyStore

    print("embedded MontyDB bulk writes, 1000 documents per call (fresh store each):")
    docs = documents(max(sizes), "scale")
    for n in sizes:
        with tempfile.TemporaryDirectory() as folder:
            store = BulkMontyStore("results", database_path=folder, key="uuid")
            store.connect()
            per_call = []
            for k in range(0, n, 1000):
                t0 = time.perf_counter()
                store.update(docs[k : min(k + 1000, n)], key="uuid")
                per_call.append(time.perf_counter() - t0)
            assert store.count() == n
            store.close()
        dt = sum(per_call)
        print(
            f"  {n:6d} documents {dt:7.2f} s   {dt / n * 1e3:6.3f} ms/document"
            f"   (first call {per_call[0]:.2f} s, last call {per_call[-1]:.2f} s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000, help="documents in the MongoDB test")
    parser.add_argument("--uri", help="your MongoDB (default: start SecantusDB here)")
    args = parser.parse_args()
    server = None
    uri = args.uri
    if uri is None:
        try:
            from secantus import SecantusDBServer  # test extra, GPL: never imported by mlipflows
        except ImportError:
            raise SystemExit("no --uri and SecantusDB is not installed: pip install secantusdb") from None
        server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=tempfile.mkdtemp())
        server.start()
        uri = f"mongodb://127.0.0.1:{server.address[1]}/storescale"
    try:
        mongo_part(uri, args.n)
    finally:
        if server is not None:
            server.stop()
    embedded_part([s for s in (1000, 2000, 5000, 10_000) if s <= max(args.n, 1000)])
    print(f"(documents ~{len(str(documents(1, 'x')[0])) / 1e3:.1f} kB each; {Path(__file__).name})")


if __name__ == "__main__":
    main()
