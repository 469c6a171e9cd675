"""KappaMaker: lattice thermal conductivity (phono3py) for a chunk of structures, one warm model.

Per chunk: one symmetry-preserving relaxation of all structures, phono3py's fc3 (and fc2)
displacements for each, every displaced supercell of every structure through one batched
engine call, then fc2/fc3 and κ (RTA and Wigner) with phono3py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from jobflow import job
from pymatgen.core import Structure

from mlipflows.engine import BatchBudget
from mlipflows.makers.base import CHUNK_JOB
from mlipflows.makers.phonons import PhononChunkMaker, maker_state
from mlipflows.phonons import wigner
from mlipflows.phonons.batched import Prepared, supercell_forces
from mlipflows.phonons.force_cache import ForceCache
from mlipflows.phonons.harmonic import SupercellTooLargeError, check_supercell_size, supercell_matrix_for
from mlipflows.phonons.kappa import (
    KappaResult,
    StabilityGate,
    Transport,
    conductivity,
    kappa_supercells,
    make_phono3py,
    mesh_frequencies,
    produce_fc2,
    stability_gate,
)
from mlipflows.potentials import Potential
from mlipflows.schemas.phonons import KappaDocument

Matrix = list[list[int]] | list[int]


@dataclass
class KappaMaker(PhononChunkMaker):
    """κ of a chunk of structures (phono3py; RTA and Wigner).

    Attributes:
        name: job name.
        chunk: model, device, campaign/tags, batch budget.
        relax: symmetric relaxation first (None: the input structures are used as they are).
        two_stage: then an unconstrained one, kept unless the space group changed (k_SRME).
        fc3_supercell_matrix: explicit fc3 supercell; else diagonal from ``fc3_min_length``.
        fc3_min_length: smallest periodic width of the fc3 supercell, Å.
        fc2_supercell_matrix: a (larger) fc2 supercell; None = the fc3 one.
        displacement: Å (phono3py's and the k_SRME code's default 0.03).
        mesh: q-mesh (three integers).
        temperatures: K.
        transport: "wigner" (κ_P + κ_C) or "rta" (κ_P).
        isotope: isotope scattering.
        max_supercell_atoms: refuse larger supercells (the error says the size needed).
        symprec: Å.
        require_stable: compute fc2 first and skip the fc3 forces and κ of a structure with
            imaginary modes (Matbench Discovery's rule) or a space group changed by the
            relaxation, as the reference κ codes do; its document records why.
        symmetrize_level: passes of fc2/fc3 translational + permutation symmetrization (1, as
            phono3py 3.x and the reference κ codes did).
        resume_forces: keep each batch's supercell forces under ``$MLIPFLOWS_HOME/cache`` until
            the chunk is done, so a rerun after a stop (wall time, kill) evaluates only the
            supercells it never finished; numbers are unchanged (bit-identical inputs only).
    """

    name: str = "mlipflows kappa"
    fc3_supercell_matrix: Matrix | None = None
    fc3_min_length: float = 8.0
    fc2_supercell_matrix: Matrix | None = None
    displacement: float = 0.03
    mesh: list[int] = field(default_factory=lambda: [11, 11, 11])
    temperatures: list[float] = field(default_factory=lambda: [300.0])
    transport: Transport = "wigner"
    isotope: bool = True
    max_supercell_atoms: int = 300
    require_stable: bool = True
    symmetrize_level: int = 1
    resume_forces: bool = True
    document_class = KappaDocument

    def recorded_settings(self) -> dict[str, Any]:
        return {
            "relax": self.relax_record(),
            "displacement": self.displacement,
            "transport": self.transport,
            # κ_C changed code in 2026-12 (phono3py 4's smm19 → SMM19's own velocity operator)
            "coherence": wigner.CODE if self.transport == "wigner" else None,
            "isotope": self.isotope,
            "symprec": self.symprec,
            "require_stable": self.require_stable,
            "symmetrize_level": self.symmetrize_level,
        }

    @job(data=list(KappaDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(
        self,
        structures: list[Structure],
        structure_ids: list[str] | None = None,
        fc3_supercells: Sequence[Matrix | None] | None = None,
        fc2_supercells: Sequence[Matrix | None] | None = None,
        meshes: Sequence[list[int] | None] | None = None,
    ) -> list[KappaDocument]:
        """One :class:`KappaDocument` per structure, in input order.

        ``fc3_supercells``, ``fc2_supercells`` and ``meshes`` override the Maker's settings per
        structure (e.g. phononDB's choices in the κ_SRME benchmark).
        """
        return self.run(  # type: ignore[return-value]
            structures,
            structure_ids,
            fc3_supercells=fc3_supercells,
            fc2_supercells=fc2_supercells,
            meshes=meshes,
        )

    def compute(
        self,
        structures: list[Structure],
        potential: Potential,
        budget: BatchBudget,
        fc3_supercells: Sequence[Matrix | None] | None = None,
        fc2_supercells: Sequence[Matrix | None] | None = None,
        meshes: Sequence[list[int] | None] | None = None,
    ) -> list[tuple]:
        n = len(structures)
        fc3_in = list(fc3_supercells or [None] * n)
        fc3 = [
            m or self.fc3_supercell_matrix or supercell_matrix_for(s, self.fc3_min_length)
            for m, s in zip(fc3_in, structures, strict=True)
        ]
        # fc2 always gets its own displacements (the fc3 supercell unless a larger one is
        # given): then the stability gate needs only the few fc2 forces
        fc2 = [
            m or self.fc2_supercell_matrix or m3
            for m, m3 in zip(fc2_supercells or [None] * n, fc3, strict=True)
        ]
        mesh = [m or self.mesh for m in (meshes or [None] * n)]
        refusals = [self._size_error(*args) for args in zip(structures, fc3, fc2, strict=True)]
        prepared = self.prepare(structures, refusals, potential, budget)
        ph3s, cells3, cells2 = [], [], []
        for p, m3, m2 in zip(prepared, fc3, fc2, strict=True):
            ph3, c3, c2 = None, [], []
            if p.error is None:
                try:
                    ph3 = make_phono3py(p.structure, m3, m2, symprec=self.symprec)
                    c3, c2 = kappa_supercells(ph3, self.displacement)
                except (RuntimeError, ValueError, TypeError) as exc:  # phono3py/spglib on odd cells
                    p.error, ph3 = f"phono3py setup failed: {type(exc).__name__}: {exc}", None
            ph3s.append(ph3)
            cells3.append(c3)
            cells2.append(c2)
        cache = ForceCache(potential) if self.resume_forces else None
        gates = self._fc2_and_gate(prepared, ph3s, cells2, mesh, potential, budget, cache)
        passed = [g is None and p.error is None for p, g in zip(prepared, gates, strict=True)]
        forces3 = supercell_forces(
            [c if ok else [] for c, ok in zip(cells3, passed, strict=True)], potential, budget, cache
        )
        out = []
        for k, (p, ph3, g3) in enumerate(zip(prepared, ph3s, forces3, strict=True)):
            result = None
            if p.error is None and passed[k] and g3.error is not None:
                p.error, p.unphysical = g3.error, g3.unphysical
            error = p.error
            if error is None and passed[k] and ph3 is not None and g3.forces is not None:
                try:
                    result = conductivity(
                        ph3,
                        g3.forces,
                        mesh[k],
                        self.temperatures,
                        self.transport,
                        self.isotope,
                        symmetrize_level=self.symmetrize_level,
                    )
                except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
                    error = f"phono3py failed: {type(exc).__name__}: {exc}"
            # per-structure choices belong to the settings: they make the result's identity
            settings = self.recorded_settings() | {
                "fc3_supercell": np.asarray(fc3[k]).tolist(),
                "fc2_supercell": np.asarray(fc2[k]).tolist(),
                "mesh": list(mesh[k]),
                "temperatures": list(self.temperatures),
            }
            out.append((p, ph3, result, error, gates[k], settings))
        if cache is not None:  # every structure has its outcome: the forces are not needed again
            cache.discard(s for cells in (*cells3, *cells2) for s in cells)
        return out

    def document(
        self, outcome: tuple, structure_id: str, structure: Structure, potential: Potential
    ) -> KappaDocument:
        p, ph3, result, error, gate, settings = outcome
        return self._document(structure_id, p, ph3, result, error, gate, potential, settings)

    def _fc2_and_gate(
        self,
        prepared: list[Prepared],
        ph3s: list[Any],
        cells2: list[list[Structure]],
        mesh: list[list[int]],
        potential: Potential,
        budget: Any,
        cache: ForceCache | None,
    ) -> list[StabilityGate | None]:
        """fc2 of every structure from one batched call; why each one must skip fc3 (None: go on)."""
        forces2 = supercell_forces(cells2, potential, budget, cache)
        gates: list[StabilityGate | None] = []
        for p, ph3, m, g2 in zip(prepared, ph3s, mesh, forces2, strict=True):
            if p.error is not None or ph3 is None:
                gates.append(None)
                continue
            if g2.error is not None:
                p.error, p.unphysical = g2.error, g2.unphysical
                gates.append(None)
                continue
            try:
                produce_fc2(ph3, g2.forces, self.symmetrize_level)
                freqs = mesh_frequencies(ph3, m) if self.require_stable else None
            except (RuntimeError, ValueError, TypeError, np.linalg.LinAlgError) as exc:
                p.error = f"phono3py fc2 failed: {type(exc).__name__}: {exc}"
                gates.append(None)
                continue
            gates.append(
                None
                if freqs is None
                else stability_gate(freqs, p.setup.spacegroup_before, p.setup.spacegroup_after)
            )
        return gates

    def _size_error(self, structure: Structure, fc3: Matrix, fc2: Matrix | None) -> str | None:
        try:
            check_supercell_size(structure, fc3, self.max_supercell_atoms)
            if fc2 is not None:
                check_supercell_size(structure, fc2, self.max_supercell_atoms)
        except SupercellTooLargeError as exc:
            return str(exc)
        return None

    def _document(
        self,
        structure_id: str,
        p: Prepared,
        ph3: Any,
        result: KappaResult | None,
        error: str | None,
        gate: StabilityGate | None,
        potential: Potential,
        settings: dict[str, Any],
    ) -> KappaDocument:
        setup = p.setup.model_copy()
        doc = KappaDocument(
            **self.fields(p.structure, structure_id, potential, settings),
            state=maker_state(p, error, result is not None or gate is not None),  # type: ignore[arg-type]
            error=error,
            setup=setup,
            temperatures=list(self.temperatures),
            isotope=self.isotope,
            conductivity_type=self.transport,
            warnings=list(p.warnings or []),
        )
        if ph3 is not None:
            setup.supercell_matrix = np.asarray(ph3.phonon_supercell_matrix).astype(int).tolist()
            setup.primitive_matrix = np.asarray(ph3.primitive_matrix).tolist()
            setup.displacement = self.displacement
            doc.n_fc3_displacements = len(ph3.supercells_with_displacements)
            setup.n_displacements = doc.n_fc3_displacements + len(ph3.phonon_supercells_with_displacements)
            setup.n_supercell_atoms = len(ph3.supercell)
            doc.fc3_supercell_matrix = np.asarray(ph3.supercell_matrix).astype(int).tolist()
        if gate is not None and error is None:
            doc.has_imaginary_modes = gate.imaginary["any"]
            doc.imaginary_flags = gate.imaginary
            doc.kappa_skipped = gate.reason
            doc.warnings.append(gate.reason)
            doc.fc2 = np.asarray(ph3.fc2).tolist()
            return doc
        if result is None:
            return doc
        doc.mesh = result.mesh
        doc.kappa_p_rta = result.kappa_p_rta.tolist()
        doc.kappa_c = result.kappa_c.tolist()
        doc.kappa_tot_rta = result.kappa_tot.tolist()
        doc.kappa_tot_avg = result.kappa_tot_avg.tolist()
        doc.has_imaginary_modes = result.imaginary["any"]
        doc.imaginary_flags = result.imaginary
        if result.imaginary["any"]:
            doc.warnings.append(f"imaginary modes (lowest {result.frequencies.min():.3f} THz): κ unreliable")
        doc.fc2 = result.fc2.tolist()
        doc.mode_kappa = result.mode_kappa_tot.tolist()
        doc.mode_frequencies = result.frequencies.tolist()
        doc.mode_weights = result.weights.tolist()
        return doc
