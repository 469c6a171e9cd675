"""Campaign stages: the funnel's extension point.

A stage kind is one class: the settings it takes (a pydantic model whose field names are the
command-line options), the chunk Maker it runs, and the physics gate its results must pass
to go on to the next stage. :mod:`mlipflows.campaign.funnel` does the rest for every kind:
selection from stored results, the manifest, resume, chunking, the failure check.

A new kind is a class here (or anywhere) plus one line in :data:`STAGE_KINDS`
(``"eos": "mlipflows.eos:EosStage"``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from jobflow import Job, Maker
from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field
from pymatgen.core import Structure

from mlipflows.engine import RelaxSettings
from mlipflows.engine.symmetry import symmetry_gain_is_genuine
from mlipflows.makers.base import ChunkSettings

# kind → "module:Class"; imported on first use
STAGE_KINDS: dict[str, str] = {
    "relax": "mlipflows.campaign.stages:RelaxStage",
    "static": "mlipflows.campaign.stages:StaticStage",
    "phonons": "mlipflows.campaign.stages:PhononStage",
    "elastic": "mlipflows.campaign.stages:ElasticStage",
    "kappa": "mlipflows.campaign.stages:KappaStage",
    "second_opinion": "mlipflows.campaign.stages:SecondOpinionStage",
    "polymorphs": "mlipflows.campaign.polymorphs:PolymorphStage",
    "eos": "mlipflows.eos:EosStage",
}


def stage_class(kind: str) -> type[CampaignStage]:
    """The class of a registered stage kind."""
    module, _, name = STAGE_KINDS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def _words_to_list(value: Any) -> Any:
    """'2 2 2' or '2,2,2' (as the CLI takes them) → [2, 2, 2]; anything else as it is."""
    if isinstance(value, str):
        try:
            return [int(x) for x in value.replace(",", " ").split()]
        except ValueError:
            return value
    return value


# three integers ≥ 1: a mesh or a diagonal supercell (phono3py reads [6, 6] as a Γ-only mesh)
Three = Annotated[
    list[Annotated[int, Field(ge=1)]], Field(min_length=3, max_length=3), BeforeValidator(_words_to_list)
]
# the CLI calls it --max-atoms; the stage setting takes either name
MAX_ATOMS = AliasChoices("max_supercell_atoms", "max_atoms")
Temperatures = Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=1)]


class StageSettings(BaseModel):
    """Base of every stage kind's settings: unknown names are errors (typos never pass)."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class Selected:
    """A structure that goes on to a stage: its id, structure and its source stage's document."""

    structure_id: str
    structure: Structure
    source: dict[str, Any]


class CampaignStage:
    """One kind of funnel stage.

    Subclasses set ``kind``, ``task_type`` (of the documents they write), ``settings_model``
    and implement :meth:`maker`; they override :meth:`gate` when their results carry a physics
    verdict that decides whether a structure goes on, and :meth:`jobs` or :meth:`after` when one
    Maker over chunks of structures is not the whole story.
    """

    kind: ClassVar[str]
    task_type: ClassVar[str]
    settings_model: ClassVar[type[StageSettings]] = StageSettings
    default_chunk_size: ClassVar[int] = 16
    # the fields a finalists table shows for this stage
    headline: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings: Any = self.settings_model(**settings)

    def maker(self, chunk: ChunkSettings) -> Maker:
        """The chunk Maker of this stage (its ``make(structures, ids)`` returns one job)."""
        raise NotImplementedError

    def jobs(self, selected: Sequence[Selected], chunk: ChunkSettings, chunk_size: int) -> list[Job]:
        """One job per chunk of the selected structures."""
        from mlipflows.makers.relax import chunk_jobs

        maker = self.maker(chunk)
        maker.name = f"{chunk.stage} ({self.kind})"
        return chunk_jobs(
            [s.structure for s in selected], [s.structure_id for s in selected], chunk_size, maker
        )

    def after(self, context: dict[str, Any]) -> list[Job]:
        """Jobs that run once every chunk of the stage is done (e.g. a rebuilt hull)."""
        return []

    @staticmethod
    def gate(doc: dict[str, Any]) -> str | None:
        """Why a successful result of this stage does not go on to the next stage (None: it does)."""
        return None


# ---- built-in kinds ------------------------------------------------------------------------


class RelaxStageSettings(StageSettings):
    fmax: float = Field(0.05, gt=0, description="eV/Å")
    max_steps: int = Field(500, ge=1)
    cell_filter: Literal["frechet", "hydrostatic", "fixed"] = "frechet"
    symmetrize: bool = False


class RelaxStage(CampaignStage):
    """Relax again (another model, tighter settings); a non-converged result does not go on."""

    kind = "relax"
    task_type = "relax"
    settings_model = RelaxStageSettings
    default_chunk_size = 64
    headline = ("energy_per_atom", "converged")

    def maker(self, chunk: ChunkSettings) -> Maker:
        from mlipflows.makers.relax import RelaxMaker

        s = self.settings
        relax = RelaxSettings(
            fmax=s.fmax, max_steps=s.max_steps, cell_filter=s.cell_filter, symmetrize=s.symmetrize
        )
        return RelaxMaker(chunk=chunk, relax=relax)

    @staticmethod
    def gate(doc: dict[str, Any]) -> str | None:
        return None if doc.get("converged") else "relaxation did not converge"


class StaticStage(CampaignStage):
    """Single points (e.g. a second model's energies at the same geometries)."""

    kind = "static"
    task_type = "static"
    default_chunk_size = 256
    headline = ("energy_per_atom",)

    def maker(self, chunk: ChunkSettings) -> Maker:
        from mlipflows.makers.relax import StaticMaker

        return StaticMaker(chunk=chunk)


class PhononStageSettings(StageSettings):
    supercell: Three | None = Field(None, description="diagonal supercell; else from min_length")
    min_length: float = Field(12.0, gt=0, description="smallest supercell width, Å")
    displacement: float = Field(0.01, gt=0, description="Å")
    mesh: Annotated[float, Field(gt=0)] | Three = Field(
        100.0, description="q-mesh length (Å) or three integers"
    )
    fmax: float = Field(1e-4, gt=0, description="symmetric relaxation, eV/Å")
    max_steps: int = Field(300, ge=1)
    no_relax: bool = False
    symprec: float = Field(1e-5, gt=0)
    max_supercell_atoms: int = Field(600, ge=1, validation_alias=MAX_ATOMS)


class PhononStage(CampaignStage):
    """Harmonic phonons; imaginary modes, a changed space group or an unconverged relaxation stop."""

    kind = "phonons"
    task_type = "phonon"
    settings_model = PhononStageSettings
    default_chunk_size = 8
    headline = ("min_frequency", "has_imaginary_modes")

    def maker(self, chunk: ChunkSettings) -> Maker:
        from mlipflows.makers.phonons import PhononMaker, phonon_relax_settings

        s = self.settings
        return PhononMaker(
            chunk=chunk,
            relax=None if s.no_relax else phonon_relax_settings(fmax=s.fmax, max_steps=s.max_steps),
            supercell_matrix=s.supercell,
            min_length=s.min_length,
            displacement=s.displacement,
            mesh=s.mesh,
            symprec=s.symprec,
            max_supercell_atoms=s.max_supercell_atoms,
        )

    @staticmethod
    def gate(doc: dict[str, Any]) -> str | None:
        return phonon_gate(doc)


def phonon_gate(doc: dict[str, Any]) -> str | None:
    """Imaginary modes (Matbench Discovery's rule), symmetry lost in the relaxation, an
    unconverged relaxation.

    A structure that relaxed to a *higher* symmetry (a slightly noisy input found its ideal
    form, e.g. P1 → Fd-3m) passes: its phonons are those of the relaxed cell, and only a loss
    means the input's structure was not a minimum of the model.
    """
    if doc.get("has_imaginary_modes"):
        return "imaginary modes"
    setup = doc.get("setup") or {}
    before, after = setup.get("spacegroup_before"), setup.get("spacegroup_after")
    loose = setup.get("spacegroup_input_loose")
    if setup.get("symmetry_changed") and not symmetry_gain_is_genuine(before, after, loose):
        return f"space group changed {before} → {after}"
    relax = setup.get("relax") or {}
    if relax and not relax.get("converged", True):
        return "relaxation did not converge"
    return None


class ElasticStageSettings(StageSettings):
    fmax: float = Field(0.002, gt=0, description="both relaxations, eV/Å")
    strains: list[float] = Field(default_factory=lambda: [-0.01, -0.005, 0.005, 0.01])
    symprec: float = Field(0.1, gt=0)


class ElasticStage(CampaignStage):
    """Elastic tensors; a Born-unstable tensor or an unconverged relaxation stops."""

    kind = "elastic"
    task_type = "elastic"
    settings_model = ElasticStageSettings
    default_chunk_size = 8
    headline = ("k_vrh", "g_vrh", "born_stable")

    def maker(self, chunk: ChunkSettings) -> Maker:
        from mlipflows.makers.elastic import ElasticMaker, ElasticSettings

        s = self.settings
        settings = ElasticSettings.with_fmax(s.fmax, strains=tuple(s.strains), symprec=s.symprec)
        return ElasticMaker(chunk=chunk, settings=settings)

    @staticmethod
    def gate(doc: dict[str, Any]) -> str | None:
        if doc.get("born_stable") is False:
            return "not Born stable (C_ij not positive definite)"
        if doc.get("relax_converged") is False:
            return "tight relaxation did not converge"
        return None


class KappaStageSettings(StageSettings):
    fc3_supercell: Three | None = Field(None, description="diagonal fc3 supercell")
    fc3_min_length: float = Field(8.0, gt=0, description="Å, when no fc3_supercell is given")
    fc2_supercell: Three | None = None
    mesh: Three = Field(default_factory=lambda: [11, 11, 11])
    displacement: float = Field(0.03, gt=0, description="Å")
    temperatures: Temperatures = Field(default_factory=lambda: [300.0], description="K, each > 0")
    transport: Literal["wigner", "rta"] = "wigner"
    fmax: float = Field(1e-4, gt=0)
    max_steps: int = Field(300, ge=1)
    no_relax: bool = False
    two_stage: bool = False
    max_supercell_atoms: int = Field(300, ge=1, validation_alias=MAX_ATOMS)


class KappaStage(CampaignStage):
    """Lattice thermal conductivity (phono3py); κ skipped for imaginary modes is recorded."""

    kind = "kappa"
    task_type = "kappa"
    settings_model = KappaStageSettings
    default_chunk_size = 2
    headline = ("kappa_tot_avg", "kappa_skipped")

    def maker(self, chunk: ChunkSettings) -> Maker:
        from mlipflows.makers.kappa import KappaMaker
        from mlipflows.makers.phonons import phonon_relax_settings

        s = self.settings
        return KappaMaker(
            chunk=chunk,
            relax=None if s.no_relax else phonon_relax_settings(fmax=s.fmax, max_steps=s.max_steps),
            two_stage=s.two_stage,
            fc3_supercell_matrix=s.fc3_supercell,
            fc3_min_length=s.fc3_min_length,
            fc2_supercell_matrix=s.fc2_supercell,
            mesh=s.mesh,
            displacement=s.displacement,
            temperatures=s.temperatures,
            transport=s.transport,
            max_supercell_atoms=s.max_supercell_atoms,
        )

    @staticmethod
    def gate(doc: dict[str, Any]) -> str | None:
        return doc.get("kappa_skipped")


class SecondOpinionStageSettings(StageSettings):
    model: str = Field(description="model B")
    threshold: float = Field(0.05, gt=0, description="flag |ΔE_form| above this, eV/atom")
    fmax: float = Field(0.05, gt=0)
    max_steps: int = Field(300, ge=1)


class SecondOpinionStage(CampaignStage):
    """Model B relaxes the selected structures; formation energies compared with model A's hull."""

    kind = "second_opinion"
    task_type = "second_opinion"
    settings_model = SecondOpinionStageSettings
    default_chunk_size = 64
    headline = ("formation_energy_per_atom", "difference", "disagrees")

    def maker(self, chunk: ChunkSettings) -> Maker:
        from mlipflows.makers.opinion import SecondOpinionMaker
        from mlipflows.second_opinion import SecondOpinion

        s = self.settings
        opinion = SecondOpinion(s.model, threshold=s.threshold, fmax=s.fmax, max_steps=s.max_steps)
        return SecondOpinionMaker(chunk=chunk, opinion=opinion)

    def jobs(self, selected: Sequence[Selected], chunk: ChunkSettings, chunk_size: int) -> list[Job]:
        from mlipflows.makers.relax import chunk_jobs

        maker = self.maker(chunk)
        maker.name = f"{chunk.stage} ({self.kind})"
        formation = [s.source.get("hull.formation_energy_per_atom") for s in selected]
        return chunk_jobs(
            [s.structure for s in selected],
            [s.structure_id for s in selected],
            chunk_size,
            maker,
            formation_a=formation,
        )

    @staticmethod
    def gate(doc: dict[str, Any]) -> str | None:
        return "the two models disagree" if doc.get("disagrees") else None
