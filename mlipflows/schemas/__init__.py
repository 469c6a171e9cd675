"""Task documents: one per structure per calculation. These field names are the query API.

Every document subclasses :class:`BaseDocument` (identity, model, state, structure) and lives
in the ``results`` collection; a structure's results join on ``structure_id`` (+ ``campaign``
and ``model.name``). Each calculation kind has its own module here.

Field names follow atomate2's ``ForceFieldTaskDocument`` where the meaning is the same.
Units: energies eV, forces eV/Å, stress GPa (ASE sign: negative under compression),
volumes Å³, times s.
"""

from mlipflows.schemas.base import INDEXED_FIELDS, BaseDocument, ModelInfo, Timings, identity_fields
from mlipflows.schemas.elastic import ElasticDocument, ElasticFittingData, FailedStrain
from mlipflows.schemas.phonons import KappaDocument, PhononDocument, PhononSetup, RelaxSummary
from mlipflows.schemas.ranking import FailedCandidate, RankedStructure, RankingDocument
from mlipflows.schemas.stability import DecompositionPart, StabilityDocument
from mlipflows.schemas.tasks import TaskDocument, TaskType

__all__ = [
    "INDEXED_FIELDS",
    "BaseDocument",
    "DecompositionPart",
    "ElasticDocument",
    "ElasticFittingData",
    "FailedCandidate",
    "FailedStrain",
    "KappaDocument",
    "ModelInfo",
    "PhononDocument",
    "PhononSetup",
    "RankedStructure",
    "RankingDocument",
    "RelaxSummary",
    "StabilityDocument",
    "TaskDocument",
    "TaskType",
    "Timings",
    "identity_fields",
]
