"""PhononMaker: harmonic phonons (phonopy) for a chunk of structures with one warm model.

Per chunk: one symmetry-preserving relaxation of all structures, phonopy displacements for
each, every displaced supercell of every structure through one batched engine call, then
force constants, band structure, DOS and thermal properties with phonopy.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from jobflow import job
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget, RelaxSettings
from mlipflows.engine.symmetry import DEFAULT_SYMPREC
from mlipflows.makers.base import CHUNK_JOB, ChunkMaker
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
from mlipflows.schemas.phonons import PhononDocument


def phonon_relax_settings(fmax: float = 1e-4, max_steps: int = 300, **changes: Any) -> RelaxSettings:
    """The tight, symmetry-preserving relaxation phonons and κ start from (residual forces
    become spurious force constants)."""
    return RelaxSettings(fmax=fmax, max_steps=max_steps, symmetrize=True, **changes)


def maker_state(p: Prepared, error: str | None, has_result: bool) -> str:
    """A structure stopped by a sanity check is unphysical; any other stop is a failure."""
    if p.error is not None:
        return p.state
    return "successful" if error is None and has_result else "failed"


@dataclass
class PhononChunkMaker(ChunkMaker):
    """What the phonon and κ Makers share: the symmetric (optionally two-stage) relaxation.

    Attributes:
        relax: the relaxation before the displacements (None: the inputs are used as they
            are); run with the space group fixed, at ``symprec``.
        two_stage: after it, relax again without the symmetry constraint and keep that result
            unless its space group changed (k_SRME's ``two_stage_relax``).
        symprec: symmetry tolerance, Å.
    """

    relax: RelaxSettings | None = field(default_factory=phonon_relax_settings)
    two_stage: bool = False
    symprec: float = DEFAULT_SYMPREC

    def relax_record(self) -> dict[str, Any] | None:
        if self.relax is None:
            return None
        return self.relax.record() | ({"two_stage": True} if self.two_stage else {})

    def prepare(
        self,
        structures: list[Structure],
        refusals: list[str | None],
        potential: Potential,
        budget: BatchBudget,
    ) -> list[Prepared]:
        """Relax every structure that was not refused (both stages in batched runs)."""
        stage1 = stage2 = None
        if self.relax is not None:
            stage1 = replace(self.relax, symmetrize=True, symprec=self.symprec)
            stage2 = replace(stage1, symmetrize=False) if self.two_stage else None
        return relax_unless_refused(structures, refusals, potential, budget, stage1, self.symprec, stage2)


@dataclass
class PhononMaker(PhononChunkMaker):
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
    supercell_matrix: list[list[int]] | list[int] | None = None
    min_length: float = 12.0
    max_supercell_atoms: int = 600
    displacement: float = 0.01
    mesh: float | list[int] = 100.0
    temperatures: list[float] = field(default_factory=lambda: [float(t) for t in range(0, 1001, 50)])
    document_class = PhononDocument

    def recorded_settings(self) -> dict[str, Any]:
        return {
            "relax": self.relax_record(),
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

    @job(data=list(PhononDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(
        self, structures: list[Structure], structure_ids: list[str] | None = None
    ) -> list[PhononDocument]:
        """One :class:`PhononDocument` per structure, in input order."""
        return self.run(structures, structure_ids)  # type: ignore[return-value]

    def compute(
        self, structures: list[Structure], potential: Potential, budget: BatchBudget, **_: Any
    ) -> list[tuple[Prepared, Any, HarmonicProperties | None, str | None]]:
        # the supercell is chosen on the input cell (a relaxation moves widths by a few %, which
        # must not flip the size across an integer); oversized ones are refused before relaxing
        matrices = [self.supercell_matrix or supercell_matrix_for(s, self.min_length) for s in structures]
        refusals = [self._size_error(s, m) for s, m in zip(structures, matrices, strict=True)]
        prepared = self.prepare(structures, refusals, potential, budget)
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
        out = []
        forces = supercell_forces(groups, potential, budget)
        for p, phonon, g in zip(prepared, phonons, forces, strict=True):
            if p.error is None and g.error is not None:
                p.error, p.unphysical = g.error, g.unphysical
            error, props = p.error, None
            if error is None and phonon is not None and g.forces is not None:
                try:
                    props = harmonic_properties(
                        phonon, g.forces, mesh=self.mesh, temperatures=self.temperatures
                    )
                except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
                    error = f"phonopy failed: {type(exc).__name__}: {exc}"
            out.append((p, phonon, props, error))
        return out

    def document(
        self, outcome: tuple, structure_id: str, structure: Structure, potential: Potential
    ) -> PhononDocument:
        return self._document(structure_id, *outcome, potential, self.recorded_settings())

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
            **self.fields(p.structure, structure_id, potential, settings),
            state=maker_state(p, error, props is not None),  # type: ignore[arg-type]
            error=error,
            setup=setup,
            warnings=list(p.warnings or []),
        )
        if props is None:
            return doc
        narrow = supercell_width_warning(np.asarray(phonon.supercell.cell), potential.cutoff)
        if narrow:
            doc.warnings.append(narrow)
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
        n_prim = len(phonon.primitive)
        doc.n_primitive_atoms = n_prim
        doc.heat_capacity_per_atom = (props.heat_capacity / n_prim).tolist()
        doc.force_constants = props.force_constants.tolist()
        doc.band_structure = {
            "qpoints": [q.tolist() for q in props.band_qpoints],
            "distances": [d.tolist() for d in props.band_distances],
            "frequencies": [f.tolist() for f in props.band_frequencies],
            "labels": props.band_labels,
        }
        doc.dos = {"frequencies": props.dos_frequencies.tolist(), "dos": props.dos.tolist()}
        return doc


def supercell_width_warning(cell: np.ndarray, cutoff: float) -> str | None:
    """A supercell narrower than twice the model's cutoff: a displaced atom's force reaches its
    own periodic images, so the force constants are aliased (a 3.6 Å copper cell, say)."""
    from mlipflows.phonons.harmonic import periodic_widths

    width = min(periodic_widths(cell))
    if cutoff and width < 2 * cutoff:
        return (
            f"supercell only {width:.1f} Å wide, under twice the model's cutoff ({2 * cutoff:.1f} Å): "
            "its force constants are aliased by periodic images; raise --min-length (or --supercell)"
        )
    return None
