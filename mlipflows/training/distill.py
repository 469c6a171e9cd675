"""Distil a teacher (a large pretrained MLIP) into a small, fast model of ours, through the store.

The labels are the teacher's own results, computed by our engine and stored like any other
result (campaign ``distil-<teacher>``), so a student can be rebuilt or refreshed from them:

* ``wbm`` / ``mp-elastic`` / ``mp-binary``: DFT-relaxed structures of ``../shared/data``
  (WBM-972, MP elastic tensors, matcalc's MP binaries), labelled at their given geometry;
* ``prototypes``: elemental and binary prototype decorations over the teacher's elements, with
  radii-scaled lattices (i.e. away from equilibrium);
* ``perturbed``: a rattled (0.02–0.15 Å), strained (2 % normal) copy of every structure above;
* ``frames``: relaxation-trajectory frames: one in six of the rattled copies relaxed by the
  teacher for 6 FIRE steps (a truncated relaxation is the trajectory's frame at that step; each
  step costs as much as a static label, so frames are sampled, not taken for every copy).

Labels a crystal screen never meets are dropped before training (:func:`plausible`): more
than 25 eV/Å on an atom, less bound than the isolated atoms, or over 300 GPa of stress. Those
come from radii-scaled decorations of odd element pairs and their rattled copies, where the
teacher extrapolates; under a squared loss a few of them dominated the gradient and the first
base student diverged (validation energy RMSE 5.4 eV/atom).

One in ten structures (by a hash of its id, so stable across refreshes) is tagged
``distil-test`` and never trained on: the held-out set of ``mlipflows model-errors`` and of
the forgetting check of surrogate fine-tuning. The student's isolated-atom energies are the
teacher's own (:func:`teacher_isolated_energies`), not a least-squares E0: formation energies
and dimers then start from the teacher's reference, not from a fit to the pool's compositions.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from mlipflows.io import Candidate

log = logging.getLogger(__name__)

SOURCES = ("wbm", "mp-elastic", "mp-binary", "prototypes", "perturbed", "frames")
TRAIN_TAG = "distil-train"
TEST_TAG = "distil-test"
FRAME_STEPS = (6,)
FRAME_SHARE = 6  # one rattled start in this many is relaxed for a frame (a step costs a static)
MAX_FORCE = 25.0  # eV/Å
MAX_COHESIVE = 0.0  # eV/atom above the teacher's isolated atoms
MAX_STRESS = 300.0 / 160.21766  # 300 GPa in eV/Å³
UNARY = ("fcc", "bcc", "hcp", "diamond")
BINARY = ("rocksalt", "cscl", "zincblende", "wurtzite", "fluorite", "rutile")


def campaign_name(teacher: str) -> str:
    return f"distil-{teacher}"


def is_test(structure_id: str) -> bool:
    """One in ten ids, stable across runs and machines (not Python's salted hash)."""
    return hashlib.sha1(structure_id.encode()).digest()[0] % 10 == 0


def teacher_isolated_energies(potential: Any, elements: Sequence[str]) -> dict[str, float]:
    """Energy (eV) of each element's isolated atom in a 20 Å box, as the teacher predicts it."""
    from mlipflows.engine import Batch

    structures = [Structure(Lattice.cubic(20.0), [el], [[0, 0, 0]]) for el in elements]
    out = potential.evaluate(Batch.from_structures(structures, device=potential.device), compute_stress=False)
    return {el: float(e) for el, e in zip(elements, out.energy.tolist(), strict=True)}


def _small(structures: list[Candidate], max_sites: int) -> list[Candidate]:
    return [c for c in structures if len(c.structure) <= max_sites]


def dataset_structures(data: Path, max_sites: int) -> list[Candidate]:
    """The DFT structures of the shared data folder that exist under ``data`` (any may be missing)."""
    from mlipflows.bench.elastic import MATCALC_FILE, TENSOR_FILE, load_elastic_data
    from mlipflows.bench.formation import WBM_FILE, load_wbm

    out: list[Candidate] = []
    wbm = data / "matcalc-benchmarks" / WBM_FILE
    if wbm.is_file():
        out += [Candidate(f"wbm-{r.material_id}", r.structure, "wbm") for r in load_wbm(wbm)]
    for sub, name, source in (
        ("mp-elastic-tensors", TENSOR_FILE, "mp-elastic"),
        ("matcalc-benchmarks", MATCALC_FILE, "mp-binary"),
    ):
        path = data / sub / name
        if path.is_file():
            _, records = load_elastic_data(path, max_sites=max_sites)
            out += [Candidate(f"{source}-{r.material_id}", r.structure, source) for r in records]
    if not out:
        log.warning("no WBM or MP elastic data under %s: the pool is prototypes only", data)
    return _small(out, max_sites)


def prototype_structures(elements: Sequence[str], n_binaries: int, seed: int) -> list[Candidate]:
    """Every element in the unary prototypes; ``n_binaries`` random binary decorations."""
    from mlipflows.prototypes import get_prototype

    out = [
        Candidate(f"proto-{p}-{el}", get_prototype(p).build({"A": el}), "prototypes")
        for el in elements
        for p in UNARY
    ]
    rng = np.random.default_rng(seed)
    pairs = list(itertools.combinations(sorted(elements), 2))
    for k in rng.choice(len(pairs), size=min(n_binaries, len(pairs)), replace=False):
        a, b = pairs[int(k)]
        if rng.random() < 0.5:
            a, b = b, a
        p = BINARY[int(rng.integers(len(BINARY)))]
        out.append(Candidate(f"proto-{p}-{a}-{b}", get_prototype(p).build({"A": a, "B": b}), "prototypes"))
    return out


def perturbed(structures: Sequence[Candidate], seed: int) -> list[Candidate]:
    """A rattled, strained copy of each structure (ids ``<id>~p``)."""
    rng = np.random.default_rng(seed)
    out = []
    for c in structures:
        s = c.structure.copy()
        strain = rng.normal(scale=0.02, size=(3, 3))
        s.apply_strain(np.clip(0.5 * (strain + strain.T), -0.08, 0.08))
        s.perturb(float(rng.uniform(0.02, 0.15)))
        out.append(Candidate(f"{c.structure_id}~p", s, "perturbed"))
    return out


def base_pool(
    data: Path, elements: Sequence[str], max_sites: int = 24, n_binaries: int = 800, seed: int = 0
) -> tuple[list[Candidate], list[Candidate]]:
    """(structures to label statically, rattled starts whose truncated relaxations are frames)."""
    allowed = set(elements)
    given = [
        c
        for c in dataset_structures(data, max_sites) + prototype_structures(elements, n_binaries, seed)
        if {el.symbol for el in c.structure.composition.elements} <= allowed
    ]
    shaken = perturbed(given, seed + 1)
    starts = [c for c in shaken if hashlib.sha1(c.structure_id.encode()).digest()[1] % FRAME_SHARE == 0]
    return given + shaken, [Candidate(c.structure_id[:-2] + "~f", c.structure, "frames") for c in starts]


def _stored_ids(store: Any, campaign: str) -> set[str]:
    from mlipflows.results import find_results

    rows = find_results(store, campaign=campaign, exclude=("structure",))
    return set(rows["structure_id"]) if len(rows) else set()


def label_pool(
    teacher: str,
    data: Path,
    store: Any,
    max_sites: int = 24,
    n_binaries: int = 800,
    chunk_size: int = 256,
    seed: int = 0,
    device: str = "cpu",
    elements: Sequence[str] | None = None,
) -> dict[str, int]:
    """Label the base pool with ``teacher`` into ``store`` (campaign ``distil-<teacher>``).

    ``elements`` restricts the pool (default: every element the teacher covers). Resumable:
    structures already stored are skipped. Returns how many were labelled now and
    how many were already there.
    """
    from jobflow import Flow, run_locally

    from mlipflows.engine import RelaxSettings
    from mlipflows.makers import RelaxMaker, StaticMaker
    from mlipflows.makers.base import ChunkSettings
    from mlipflows.makers.relax import chunk_jobs
    from mlipflows.potentials import load_potential

    campaign = campaign_name(teacher)
    covered = load_potential(teacher, device=device).elements
    elements = sorted(covered if elements is None else set(elements) & covered)
    statics, starts = base_pool(data, elements, max_sites, n_binaries, seed)
    done = _stored_ids(store, campaign)
    jobs = []
    n_new = 0
    for tag in (TRAIN_TAG, TEST_TAG):
        todo = [
            c for c in statics if c.structure_id not in done and is_test(c.structure_id) == (tag == TEST_TAG)
        ]
        chunk = ChunkSettings(model=teacher, device=device, campaign=campaign, tags=[tag, "static"])
        jobs += chunk_jobs(
            [c.structure for c in todo], [c.structure_id for c in todo], chunk_size, StaticMaker(chunk=chunk)
        )
        n_new += len(todo)
        for steps in FRAME_STEPS:
            frames = [c for c in starts if f"{c.structure_id}{steps}" not in done]
            frames = [c for c in frames if is_test(c.structure_id) == (tag == TEST_TAG)]
            chunk = ChunkSettings(
                model=teacher, device=device, campaign=campaign, tags=[tag, f"frame-{steps}"]
            )
            maker = RelaxMaker(chunk=chunk, relax=RelaxSettings(fmax=0.01, max_steps=steps))
            ids = [f"{c.structure_id}{steps}" for c in frames]
            jobs += chunk_jobs([c.structure for c in frames], ids, chunk_size, maker)
            n_new += len(frames)
    if jobs:
        run_locally(Flow(jobs, name=f"label {campaign}"), store=store, log=False)
    return {"labelled": n_new, "already_stored": len(done), "elements": len(elements)}


def plausible(sample: Any, e0: dict[str, float]) -> bool:
    """Whether a teacher label is one a student should fit (see the module docstring)."""
    symbols = sample.atoms.get_chemical_symbols()
    cohesive = (sample.energy - sum(e0[s] for s in symbols)) / len(symbols)
    if not np.isfinite(sample.energy) or cohesive > MAX_COHESIVE:
        return False
    if sample.forces is not None and not np.abs(sample.forces).max(initial=0.0) <= MAX_FORCE:
        return False
    return sample.stress is None or bool(np.abs(sample.stress).max() <= MAX_STRESS)


def pool_samples(
    teacher: str, split: str, store: Any = None, head: str | None = None, e0: dict[str, float] | None = None
) -> list:
    """The stored labels of the pool's ``train`` or ``test`` split as training samples, without
    the implausible ones (:func:`plausible`; ``e0``: the teacher's isolated atoms)."""
    from mlipflows.training.store_data import StoreQuery, read_store

    tag = TRAIN_TAG if split == "train" else TEST_TAG
    samples = read_store(
        StoreQuery(campaign=campaign_name(teacher), model=teacher, tag=tag), head=head or teacher, store=store
    )
    e0 = e0 if e0 is not None else fixed_e0(teacher, teacher)[teacher]
    kept = [s for s in samples if plausible(s, e0)]
    if len(kept) < len(samples):
        log.info("dropped %d implausible %s labels of %d", len(samples) - len(kept), split, len(samples))
    return kept


def fixed_e0(teacher: str, head: str, device: str = "cpu") -> dict[str, dict[str, float]]:
    """``TrainConfig.e0`` for a student of ``teacher``: the teacher's isolated-atom energies."""
    from mlipflows.potentials import load_potential

    pot = load_potential(teacher, device=device)
    return {head: teacher_isolated_energies(pot, sorted(pot.elements))}


def export_pool(
    teacher: str, checkpoint: Path, head: str, test_tag: str = TEST_TAG, store: Any = None
) -> dict:
    """Write the base pool next to a student (``<stem>-replay.extxyz.gz``: the training split,
    ``<stem>-heldout.extxyz.gz``: the held-out split) and put the student's held-out errors,
    overall and per element, into its checkpoint's metadata. Returns those errors."""
    from mlipflows.models.checkpoint import load_model, save_checkpoint
    from mlipflows.training.data import write_extxyz
    from mlipflows.training.metrics import errors, per_element_errors

    checkpoint = Path(checkpoint)
    e0 = fixed_e0(teacher, teacher)[teacher]
    train = pool_samples(teacher, "train", store, head, e0)
    test = pool_samples(teacher, "test", store, head, e0)
    write_extxyz(train, checkpoint.with_name(f"{checkpoint.stem}-replay.extxyz.gz"))
    write_extxyz(test, checkpoint.with_name(f"{checkpoint.stem}-heldout.extxyz.gz"))
    model, content = load_model(checkpoint)
    heldout = {"all": errors(model, test)["all"], "per_element": per_element_errors(model, test)}
    metadata = dict(content["metadata"], heldout=heldout, teacher=teacher, n_pool=len(train) + len(test))
    save_checkpoint(model, checkpoint, metadata=metadata, training=content["training"])
    return heldout
