"""Equation of state as a chunk Maker and a funnel stage (``kind: eos``).

Every structure is scaled isotropically to ``n_points`` volumes within ±``max_volume_strain``,
its atoms relaxed at each fixed cell, all points of all structures of a chunk in one batched
relaxation; pymatgen's ``EOS`` (Birch–Murnaghan by default) gives V0, B0 and B0′.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from jobflow import Maker, job
from pydantic import Field
from pymatgen.analysis.eos import EOS
from pymatgen.core import Structure

from mlipflows.campaign.stages import CampaignStage, StageSettings
from mlipflows.engine import BatchBudget, RelaxSettings, SystemResult, relax
from mlipflows.makers.base import CHUNK_JOB, ChunkMaker, ChunkSettings
from mlipflows.potentials import Potential
from mlipflows.progress import report
from mlipflows.schemas.eos import EosDocument


@dataclass
class EosMaker(ChunkMaker):
    """E(V) and the EOS fit of a chunk of structures.

    Attributes:
        n_points: volumes per structure.
        max_volume_strain: largest relative volume change (±).
        fmax: force threshold of the fixed-cell relaxation at each volume, eV/Å.
        eos: pymatgen EOS name (birch_murnaghan, vinet, murnaghan, ...).
    """

    name: str = "mlipflows eos"
    n_points: int = 7
    max_volume_strain: float = 0.06
    fmax: float = 0.01
    eos: str = "birch_murnaghan"
    document_class = EosDocument

    def recorded_settings(self) -> dict[str, Any]:
        keys = ("n_points", "max_volume_strain", "fmax", "eos")
        return {k: getattr(self, k) for k in keys}

    @job(data=list(EosDocument.DATA_FIELDS), config=CHUNK_JOB)
    def make(self, structures: list[Structure], structure_ids: list[str] | None = None) -> list[EosDocument]:
        """One :class:`EosDocument` per structure, in input order."""
        return self.run(structures, structure_ids)  # type: ignore[return-value]

    def compute(
        self, structures: list[Structure], potential: Potential, budget: BatchBudget, **_: Any
    ) -> list[list[SystemResult]]:
        factors = np.linspace(1 - self.max_volume_strain, 1 + self.max_volume_strain, self.n_points)
        cells = []
        for s in structures:
            for f in factors:
                scaled = s.copy()
                scaled.scale_lattice(s.volume * f)
                cells.append(scaled)
        settings = RelaxSettings(fmax=self.fmax, max_steps=300, cell_filter="fixed")
        results = relax(cells, potential, settings, budget=budget, progress=report)
        return [results[k : k + self.n_points] for k in range(0, len(results), self.n_points)]

    def document(
        self, outcome: list[SystemResult], structure_id: str, structure: Structure, potential: Potential
    ) -> EosDocument:
        n = len(structure)
        volumes = [float(r.structure.volume) for r in outcome]
        energies = [r.energy if r.ok else None for r in outcome]
        v_ok = [v for v, e in zip(volumes, energies, strict=True) if e is not None]
        e_ok = [e for e in energies if e is not None]
        fields = dict(volumes=volumes, energies=energies, eos=self.eos, n_points_used=len(v_ok))
        bad = next((r for r in outcome if not r.ok), None)
        if len(v_ok) < 5:
            reason = f"{len(v_ok)} of {len(outcome)} volumes usable; the fit needs 5"
            if bad is not None:
                reason += f" (first bad point {bad.state}: {bad.reason})"
            state = "unphysical" if bad is not None and bad.error is None else "failed"
            return EosDocument(
                **self.fields(structure, structure_id, potential), state=state, error=reason, **fields
            )
        fit = EOS(self.eos).fit(v_ok, e_ok)
        residual = np.asarray(e_ok) - np.asarray([fit.func(v) for v in v_ok])
        return EosDocument(
            **self.fields(structure, structure_id, potential),
            state="successful",
            v0=float(fit.v0),
            v0_per_atom=float(fit.v0) / n,
            e0_per_atom=float(fit.e0) / n,
            b0=float(fit.b0_GPa),
            b1=float(fit.b1),
            fit_rms=1000 * float(np.sqrt(np.mean(residual**2))) / n,
            **fields,
        )


class EosStageSettings(StageSettings):
    n_points: int = Field(7, ge=5)
    max_volume_strain: float = Field(0.06, gt=0, lt=0.5)
    fmax: float = Field(0.01, gt=0, description="eV/Å")
    eos: str = "birch_murnaghan"


class EosStage(CampaignStage):
    """Energy–volume curve and Birch–Murnaghan V0, B0, B0′ of each selected structure."""

    kind = "eos"
    task_type = "eos"
    settings_model = EosStageSettings
    default_chunk_size = 32
    headline = ("v0_per_atom", "b0", "b1")

    def maker(self, chunk: ChunkSettings) -> Maker:
        return EosMaker(chunk=chunk, **self.settings.model_dump())
