"""κ_SRME benchmark on the 103 phononDB-PBE materials, protocol ``phonondb-v3``.

``phonondb-v3`` is the protocol of the reference code, k_SRME (MPA2suite/k_SRME,
``models/*/1_test_srme.py``; Póta et al., arXiv:2408.00755), parameter by parameter (the audit
is in ``analysis/kappa/README.md``):

- two-stage relaxation: FIRE + Fréchet cell filter without tilt, fmax 1e-4 eV/Å, ≤ 300 steps,
  first with the space group fixed, then unconstrained, keeping the second result unless its
  space group changed; ASE's convergence criterion;
- phononDB's fc2/fc3 supercells and q-mesh per material, primitive "auto", symprec 1e-5;
- displacement 0.03 Å (k_SRME's default; ``phonondb-v1`` used 0.01 Å);
- fc2 first: imaginary modes (Matbench Discovery's rule) or a broken space group skip fc3 and
  κ and count as SRME = 2, SRD = −2;
- force constants symmetrized once; κ at 300 K from the Wigner transport equation
  (κ_P + κ_C) with isotope scattering and a 1 m boundary; metrics from
  :mod:`mlipflows.metrics.phonons`;
- κ_C with SMM19's own velocity operator, as the reference's phono3py 3.x computed it
  (:mod:`mlipflows.phonons.wigner`); ``phonondb-v2`` used phono3py 4's ``smm19``, whose κ_C is
  larger (PbTe +29 %), and is otherwise the same.

DFT references: phononDB PBE without NAC, via the k_SRME repository (``data/``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from mlipflows.bench import NOT_RUN, stored_error
from mlipflows.errors import DataNotFoundError, TableMismatchError
from mlipflows.makers.base import ChunkSettings
from mlipflows.makers.kappa import KappaMaker
from mlipflows.makers.phonons import phonon_relax_settings
from mlipflows.metrics.phonons import KappaPrediction, KappaReference, material_metrics
from mlipflows.phonons import wigner
from mlipflows.store import stored_results

STRUCTURES_FILE = "phononDB-PBE-structures.extxyz"
KAPPA_FILE = "kappas_phononDB_PBE_noNAC.json.gz"
PROTOCOL = "phonondb-v3"
# what a table's metrics JSON says made κ (tables of another κ code are not combined)
TRANSPORT = f"Wigner κ_P + κ_C; κ_C: {wigner.CODE}"
PROTOCOL_DISPLACEMENT = 0.03  # Å, k_SRME's default (phonondb-v1 used 0.01)
# results are looked up by campaign: earlier protocols (other campaigns) are never reused
CAMPAIGN = f"bench-kappa-{PROTOCOL}"
TEMPERATURES = [300.0]


@dataclass
class PhononDbRecord:
    """One benchmark material: structure, phononDB's supercells and mesh, DFT reference."""

    material_id: str
    name: str
    structure: Structure
    fc2_supercell: list[list[int]]
    fc3_supercell: list[list[int]]
    q_mesh: list[int]
    reference: KappaReference


def load_phonondb(path: Path, limit: int | None = None, ids: list[str] | None = None) -> list[PhononDbRecord]:
    """The materials in ``path`` (the folder with both files), smallest supercells first.

    Args:
        path: folder with ``phononDB-PBE-structures.extxyz`` and ``kappas_phononDB_PBE_noNAC.json.gz``.
        limit: keep the first ``limit`` materials (cheapest first: fc3 atoms, then fc2 atoms, id).
        ids: keep only these mp-ids (or formulas).
    """
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    path = Path(path).expanduser()
    files = [path / STRUCTURES_FILE, path / KAPPA_FILE]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise DataNotFoundError(
            f"κ_SRME data not found: {', '.join(map(str, missing))}. Pass --data pointing to the folder "
            f"holding {STRUCTURES_FILE} and {KAPPA_FILE} (MPA2suite/k_SRME data/, phononDB CC-BY-4.0; "
            "shipped in shared/data/phonondb-kappa103)"
        )
    frame = pd.read_json(files[1]).set_index("mp_id")
    records = []
    for atoms in read(files[0], index=":", format="extxyz"):
        info = atoms.info
        mp_id = str(info["mp_id"])
        if ids and mp_id not in ids and str(info["name"]) not in ids:
            continue
        ref = frame.loc[mp_id]
        records.append(
            PhononDbRecord(
                material_id=mp_id,
                name=str(info["name"]),
                structure=AseAtomsAdaptor.get_structure(atoms),
                fc2_supercell=np.asarray(info["fc2_supercell"]).astype(int).tolist(),
                fc3_supercell=np.asarray(info["fc3_supercell"]).astype(int).tolist(),
                q_mesh=np.asarray(info["q_mesh"]).astype(int).tolist(),
                reference=KappaReference(
                    kappa_tot_avg=np.asarray(ref["kappa_TOT_ave"], dtype=float),
                    mode_kappa_tot_avg=np.asarray(ref["mode_kappa_TOT_ave"], dtype=float),
                    spacegroup=int(info["symm.no"]),
                ),
            )
        )
    records.sort(
        key=lambda r: (
            _cost(r.structure, r.fc3_supercell),
            _cost(r.structure, r.fc2_supercell),
            r.material_id,
        )
    )
    return records[:limit] if limit is not None else records


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` → (K, N), 1 ≤ K ≤ N; a ValueError says what a shard looks like."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard {text!r}: write K/N, e.g. 2/4 for the second of four shards") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be between 1 and N")
    return k, n


def shard_of(records: list[PhononDbRecord], k: int, n: int) -> list[PhononDbRecord]:
    """Every N-th material from the K-th (1-based): cheap and expensive ones spread over the shards."""
    return records[k - 1 :: n]


def protocol_maker(
    model: str,
    device: str = "cpu",
    dtype: str = "float32",
    batch_atoms: int | None = None,
    displacement: float = PROTOCOL_DISPLACEMENT,
) -> KappaMaker:
    """The KappaMaker that runs ``phonondb-v3`` (per-material supercells and mesh come with the call)."""
    return KappaMaker(
        chunk=ChunkSettings(
            model=model,
            device=device,
            dtype=dtype,
            campaign=CAMPAIGN,
            tags=["benchmark"],
            max_atoms=batch_atoms,
        ),
        relax=phonon_relax_settings(fmax=1e-4, max_steps=300, ase_convergence=True, no_tilt=True),
        two_stage=True,
        displacement=displacement,
        temperatures=TEMPERATURES,
        transport="wigner",
        isotope=True,
        max_supercell_atoms=1000,
        symprec=1e-5,
        require_stable=True,
        symmetrize_level=1,
    )


def stored_documents(store: Any, checksum: str, displacement: float) -> dict[str, dict]:
    """Full κ documents (per-mode κ from the data store) of earlier runs of this protocol, by id."""
    store.connect()  # get_output reads the job documents
    crit = {
        "campaign": CAMPAIGN,
        "model.checksum": checksum,
        "task_type": "kappa",
        "settings.displacement": displacement,
    }
    rows = stored_results(store, crit, properties=["structure_id", "job_uuid"])
    docs: dict[str, dict] = {}
    for job_uuid in {r["job_uuid"] for r in rows if r.get("job_uuid")}:
        try:
            for doc in store.get_output(job_uuid, load=True):
                docs[doc["structure_id"]] = doc
        except ValueError:  # job output gone (store pruned): run it again
            continue
    return docs


def _cost(structure: Structure, matrix: list[list[int]]) -> int:
    return round(abs(float(np.linalg.det(np.asarray(matrix))))) * len(structure)


def prediction_from_document(doc: dict[str, Any] | None) -> KappaPrediction:
    """What the metrics need from a stored κ document (None: the material was not run)."""
    error = stored_error(doc)
    if error is not None:
        return KappaPrediction(error=error)
    mode = doc.get("mode_kappa")
    setup = doc.get("setup") or {}
    return KappaPrediction(
        kappa_tot_avg=np.asarray(doc["kappa_tot_avg"], dtype=float),
        mode_kappa_tot_avg=None if mode is None else np.asarray(mode, dtype=float)[..., :3].mean(axis=-1),
        weights=None if doc.get("mode_weights") is None else np.asarray(doc["mode_weights"], dtype=float),
        has_imaginary_modes=doc.get("has_imaginary_modes"),
        skipped=doc.get("kappa_skipped"),
        spacegroup_before=setup.get("spacegroup_before"),
        spacegroup_after=setup.get("spacegroup_after"),
    )


def evaluate(records: list[PhononDbRecord], docs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per material: κ (W/m·K), SRD, SRE, SRME and the reason when SRME = 2."""
    rows = []
    for r in records:
        doc = docs.get(r.material_id)
        metrics = material_metrics(prediction_from_document(doc), r.reference)
        setup = (doc or {}).get("setup") or {}
        relax = setup.get("relax") or {}
        rows.append(
            {
                "material_id": r.material_id,
                "formula": r.name,
                "spacegroup": r.reference.spacegroup,
                "q_mesh": "x".join(map(str, r.q_mesh)),
                **metrics,
                "kappa_p": None
                if not doc or not doc.get("kappa_p_rta")
                else float(np.mean(doc["kappa_p_rta"][0][:3])),
                "kappa_c": None
                if not doc or not doc.get("kappa_c")
                else float(np.mean(doc["kappa_c"][0][:3])),
                "relax_converged": relax.get("converged"),
                "relax_steps": relax.get("n_steps"),
                "wall_s": ((doc or {}).get("timings") or {}).get("wall_s"),
            }
        )
    return pd.DataFrame(rows)


# what must be equal for a row of an earlier table to stand for a run of this command
TABLE_MATCH_KEYS = ("checksum", "protocol", "displacement", "dtype", "phono3py", "transport")
# the reason material_metrics gives a material with no stored document
NOT_RUN_REASON = f"failed: {NOT_RUN}"


def table_rows(paths: list[Path], expected: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-material rows of earlier ``bench kappa`` tables, by material id.

    A table is only reused when its ``-metrics.json`` (written next to it) records the same
    weights, protocol, displacement, dtype and κ code as ``expected``: that is what lets runs
    on different machines or sessions (``--shard`` or ``--ids``) be combined into one benchmark.
    Rows that failed (an error, or not run) are left out, so those materials run again: a
    failure on one machine (out of memory, a killed job) says nothing about the model. Outcomes
    of the protocol itself (imaginary modes, broken symmetry) are kept. A material held by
    several tables is taken from the first.

    Raises:
        TableMismatchError: a table or its metrics file is missing or unreadable, or was made
            with other settings.
    """
    rows: dict[str, dict[str, Any]] = {}
    for path in paths:
        for row in _read_table(Path(path).expanduser(), expected).to_dict("records"):
            if str(row.get("srme_reason")).startswith("failed"):
                continue
            rows.setdefault(row["material_id"], {k: _none_if_nan(v) for k, v in row.items()})
    return rows


def _read_table(path: Path, expected: dict[str, Any]) -> pd.DataFrame:
    meta_path = path.with_name(f"{path.stem}-metrics.json")
    for needed in (path, meta_path):
        if not needed.is_file():
            raise TableMismatchError(
                f"{needed} not found: --from-table takes a table written by `mlipflows bench kappa`, "
                f"with its {meta_path.name} beside it (it says which weights and protocol made the rows)"
            )
    try:
        meta = json.loads(meta_path.read_text())
        frame = pd.read_csv(path, dtype={"material_id": str})
    except (ValueError, OSError) as exc:
        raise TableMismatchError(f"{path} or {meta_path.name} cannot be read: {exc}") from None
    differ = [
        f"{k} {meta.get(k)!r} (this run: {expected[k]!r})"
        for k in TABLE_MATCH_KEYS
        if meta.get(k) != expected[k]
    ]
    if differ:
        raise TableMismatchError(
            f"{path} was made with other settings, so its κ cannot stand for this run: " + "; ".join(differ)
        )
    missing = {"material_id", "srme", "srd", "sre", "srme_reason"} - set(frame.columns)
    if missing:
        raise TableMismatchError(f"{path} lacks the columns {sorted(missing)} of a `bench kappa` table")
    return frame


def merge_table_rows(frame: pd.DataFrame, reused: dict[str, dict[str, Any]]) -> tuple[pd.DataFrame, int]:
    """``frame`` (from :func:`evaluate`) with the rows of materials it did not run taken from
    ``reused``, and how many were taken."""
    rows, n_taken = [], 0
    for row in frame.to_dict("records"):
        earlier = reused.get(row["material_id"])
        if row.get("srme_reason") == NOT_RUN_REASON and earlier is not None:
            row, n_taken = {k: earlier.get(k) for k in frame.columns}, n_taken + 1
        rows.append(row)
    return pd.DataFrame(rows, columns=frame.columns), n_taken


def _none_if_nan(value: Any) -> Any:
    return None if isinstance(value, float) and not np.isfinite(value) else value


def parity_plot(frame: pd.DataFrame, model: str, metrics: dict[str, Any], path: Path) -> None:
    """κ MLIP vs κ DFT (W/m·K, log-log) with a factor-2 band; materials without κ are listed.

    κ spans four decades across the 103 materials, so only log axes show every material;
    censored ones (imaginary modes, broken symmetry, failures) have no κ and are named below
    the axes with their reason instead of being hidden.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    censored_mask = frame["srme_reason"].map(lambda r: isinstance(r, str) and bool(r))
    ok = frame[~censored_mask & frame["kappa_pred"].gt(0)]
    censored = frame[~frame.index.isin(ok.index)]
    fig, ax = plt.subplots(figsize=(5.2, 5.4))
    lo, hi = 0.1, 3000.0
    if len(ok):
        values = np.concatenate([ok["kappa_dft"], ok["kappa_pred"]])
        lo, hi = min(lo, float(values.min()) / 1.5), max(hi, float(values.max()) * 1.5)
    line = np.array([lo, hi])
    ax.fill_between(line, line / 2, line * 2, color="0.9", label="within a factor of 2")
    ax.plot(line, line, "k--", lw=1)
    ax.scatter(ok["kappa_dft"], ok["kappa_pred"], s=14, alpha=0.8, label=f"{model} (n={len(ok)})")
    for row in ok.itertuples():
        if abs(row.srd) > 2 / 3:  # off by more than a factor of 2: name it
            ax.annotate(
                row.formula,
                (row.kappa_dft, row.kappa_pred),
                fontsize=6,
                xytext=(2, 2),
                textcoords="offset points",
            )
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
    ax.set(xlabel="κ DFT, phononDB PBE (W/m·K)", ylabel=f"κ {model} (W/m·K)")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(
        f"κ_SRME {metrics['kappa_srme']:.3f}, κ_SRE {metrics['kappa_sre']:.3f}, "
        f"κ_SRD {metrics['kappa_srd']:+.3f} ({metrics['n_materials']} materials)",
        fontsize=9,
    )
    if len(censored):
        names = ", ".join(f"{r.formula} ({_short(r.srme_reason)})" for r in censored.itertuples())
        fig.text(0.02, 0.01, f"no κ (SRME 2): {names}", fontsize=6, wrap=True, va="bottom")
    fig.tight_layout(rect=(0, 0.08 if len(censored) else 0, 1, 1))
    fig.savefig(path, dpi=150)
    plt.close(fig)


def _short(reason: Any, width: int = 40) -> str:
    text = str(reason or "no κ").split(" (")[0]
    return text if len(text) <= width else text[: width - 1] + "…"
