"""PhononMaker: harmonic phonons (phonopy) for a chunk of structures with one warm model.

Per chunk: one symmetry-preserving relaxation of all structures, phonopy displacements for
each, every displaced supercell of every structure through one batched engine call, then
force constants, band structure, DOS and thermal properties with phonopy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jobflow import JobConfig, Maker, job
from pymatgen.core import Structure

from mlipflows.engine import RelaxSettings
from mlipflows.makers.base import BULKY_FIELDS, ChunkSettings, default_ids, result_uuid, store_flat
from mlipflows.phonons.batched import Prepared, relax_unless_refused, supercell_forces
from mlipflows.phonons.harmonic import (
    HarmonicProperties,
    SupercellTooLargeError,
    check_supercell_size,
    displaced_supercells,
    harmonic_properties,
    make_phonopy,
    supercell_matrix_for,
)
from mlipflows.potentials import Potential
from mlipflows.progress import report_chunk
from mlipflows.schemas.base import ModelInfo, Timings, identity_fields
from mlipflows.schemas.phonons import PHONON_DATA_FIELDS, PhononDocument

_CONFIG = JobConfig(expose_store=True)


@dataclass
class PhononRelax:
    """The symmetry-preserving relaxation before phonons (None on a Maker = use the input as is).

    Attributes:
        fmax: eV/Å (tight: residual forces become spurious force-constant errors).
        max_steps: FIRE steps (per stage).
        cell_filter: "frechet" (positions + cell) or "fixed".
        two_stage: after the symmetric relaxation, relax again without the symmetry constraint
            and keep that result unless its space group changed (k_SRME's ``two_stage_relax``).
        ase_convergence: stop on ASE's criterion alone (generalised forces below fmax), as the
            reference protocols that run ASE's FIRE do.
        no_tilt: keep the cell angles (ASE's Fréchet filter with mask [1, 1, 1, 0, 0, 0]).
    """

    fmax: float = 1e-4
    max_steps: int = 300
    cell_filter: str = "frechet"
    two_stage: bool = False
    ase_convergence: bool = False
    no_tilt: bool = False

    def settings(self, symprec: float, symmetrize: bool = True) -> RelaxSettings:
        """The engine settings of the (first, symmetric) stage; ``symmetrize=False``: stage two."""
        return RelaxSettings(
            fmax=self.fmax,
            max_steps=self.max_steps,
            cell_filter=self.cell_filter,  # type: ignore[arg-type]
            symmetrize=symmetrize,
            symprec=symprec,
            ase_convergence=self.ase_convergence,
            no_tilt=self.no_tilt,
        )


def document_fields(
    structure: Structure,
    structure_id: str,
    task_type: str,
    potential: Potential,
    chunk: ChunkSettings,
    settings: dict[str, Any],
) -> dict[str, Any]:
    """BaseDocument identity/provenance fields, with the deterministic (rerun-safe) uuid."""
    return {
        "uuid": result_uuid(chunk.campaign, structure_id, task_type, potential.card.checksum, settings),
        "structure_id": structure_id,
        "campaign": chunk.campaign,
        "tags": chunk.tags,
        **identity_fields(structure),
        "model": ModelInfo.from_card(potential.card),
        "device": str(potential.device),
        "settings": settings,
        "structure": structure.as_dict(),
    }


def maker_state(p: Prepared, error: str | None, has_result: bool) -> str:
    """A structure stopped by a sanity check is unphysical; any other stop is a failure."""
    if p.error is not None:
        return p.state
    return "successful" if error is None and has_result else "failed"


@dataclass
class PhononMaker(Maker):
    """Harmonic phonons of a chunk of structures.

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
        relax: symmetric relaxation first (None: the input structures are used as they are).
        supercell_matrix: explicit 3×3 (or 3 diagonal) supercell; else from ``min_length``.
        min_length: smallest periodic width of the supercell, Å.
        max_supercell_atoms: refuse larger supercells (the error says the size needed).
        displacement: Å.
        mesh: q-mesh for DOS and thermal properties (phonopy's length in Å, or 3 integers).
        temperatures: K.
        symprec: symmetry tolerance, Å.
    """

    name: str = "mlipflows phonons"
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    relax: PhononRelax | None = field(default_factory=PhononRelax)
    supercell_matrix: list[list[int]] | list[int] | None = None
    min_length: float = 12.0
    max_supercell_atoms: int = 600
    displacement: float = 0.01
    mesh: float | list[int] = 100.0
    temperatures: list[float] = field(default_factory=lambda: [float(t) for t in range(0, 1001, 50)])
    symprec: float = 1e-5

    def recorded_settings(self) -> dict[str, Any]:
        return {
            "relax": None if self.relax is None else vars(self.relax),
            "supercell_matrix": self.supercell_matrix,
            "min_length": self.min_length,
            "displacement": self.displacement,
            "mesh": self.mesh,
            "symprec": self.symprec,
        }

    def _size_error(self, structure: Structure, matrix: Any) -> str | None:
        """The refusal message when the supercell of ``structure`` exceeds ``max_supercell_atoms``."""
        try:
            check_supercell_size(structure, matrix, self.max_supercell_atoms)
        except SupercellTooLargeError as exc:
            return str(exc)
        return None

    @job(data=list(PHONON_DATA_FIELDS), config=_CONFIG)
    def make(
        self, structures: list[Structure], structure_ids: list[str] | None = None
    ) -> list[PhononDocument]:
        """One :class:`PhononDocument` per structure, in input order."""
        ids = list(structure_ids) if structure_ids else default_ids(structures)
        potential = self.chunk.potential()
        budget = self.chunk.budget(potential)
        t0 = time.perf_counter()
        relax_settings = None if self.relax is None else self.relax.settings(self.symprec)
        # the supercell is chosen on the input cell (a relaxation moves widths by a few %, which
        # must not flip the size across an integer); oversized ones are refused before relaxing
        matrices = [self.supercell_matrix or supercell_matrix_for(s, self.min_length) for s in structures]
        refusals = [self._size_error(s, m) for s, m in zip(structures, matrices, strict=True)]
        prepared = relax_unless_refused(structures, refusals, potential, budget, relax_settings, self.symprec)
        phonons, groups = [], []
        for p, matrix in zip(prepared, matrices, strict=True):
            phonon, cells = None, []
            if p.error is None:
                try:
                    phonon = make_phonopy(
                        p.structure, matrix, symprec=self.symprec, max_atoms=self.max_supercell_atoms
                    )
                    cells = displaced_supercells(phonon, self.displacement)
                except SupercellTooLargeError as exc:
                    p.error, phonon = str(exc), None
                except (RuntimeError, ValueError, TypeError) as exc:  # phonopy/spglib on odd cells
                    p.error, phonon = f"phonopy setup failed: {type(exc).__name__}: {exc}", None
            phonons.append(phonon)
            groups.append(cells)
        forces = supercell_forces(groups, potential, budget)
        settings = self.recorded_settings()
        docs = []
        for sid, p, phonon, g in zip(ids, prepared, phonons, forces, strict=True):
            if p.error is None and g.error is not None:
                p.error, p.unphysical = g.error, g.unphysical
            error, f = p.error, g.forces
            props = None
            if error is None and phonon is not None and f is not None:
                try:
                    props = harmonic_properties(phonon, f, mesh=self.mesh, temperatures=self.temperatures)
                except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
                    error = f"phonopy failed: {type(exc).__name__}: {exc}"
            docs.append(self._document(sid, p, phonon, props, error, potential, settings))
        wall = (time.perf_counter() - t0) / max(len(docs), 1)
        for d in docs:
            d.timings = Timings(wall_s=wall)
        store_flat(docs, exclude=(*BULKY_FIELDS, *PHONON_DATA_FIELDS))
        report_chunk()
        return docs

    def _document(
        self,
        structure_id: str,
        p: Prepared,
        phonon: Any,
        props: HarmonicProperties | None,
        error: str | None,
        potential: Potential,
        settings: dict[str, Any],
    ) -> PhononDocument:
        setup = p.setup.model_copy()
        if phonon is not None:
            setup.supercell_matrix = np.asarray(phonon.supercell_matrix).astype(int).tolist()
            setup.primitive_matrix = np.asarray(phonon.primitive_matrix).tolist()
            setup.displacement = self.displacement
            setup.n_displacements = len(phonon.dataset["first_atoms"]) if phonon.dataset else 0
            setup.n_supercell_atoms = len(phonon.supercell)
        doc = PhononDocument(
            **document_fields(p.structure, structure_id, "phonon", potential, self.chunk, settings),
            state=maker_state(p, error, props is not None),  # type: ignore[arg-type]
            error=error,
            setup=setup,
            warnings=list(p.warnings or []),
        )
        if props is None:
            return doc
        doc.has_imaginary_modes = props.imaginary["any"]
        doc.imaginary_flags = props.imaginary
        if props.imaginary["any"]:
            doc.warnings.append(f"imaginary modes (lowest {props.min_frequency:.3f} THz)")
        doc.min_frequency = props.min_frequency
        doc.max_frequency = float(max(f.max() for f in props.band_frequencies))
        doc.mesh = props.mesh
        doc.band_labels = props.band_labels
        doc.temperatures = props.temperatures.tolist()
        doc.free_energy = props.free_energy.tolist()
        doc.entropy = props.entropy.tolist()
        doc.heat_capacity = props.heat_capacity.tolist()
        doc.force_constants = props.force_constants.tolist()
        doc.band_structure = {
            "qpoints": [q.tolist() for q in props.band_qpoints],
            "distances": [d.tolist() for d in props.band_distances],
            "frequencies": [f.tolist() for f in props.band_frequencies],
            "labels": props.band_labels,
        }
        doc.dos = {"frequencies": props.dos_frequencies.tolist(), "dos": props.dos.tolist()}
        return doc
