"""The unit of a document field, read from its description (each schema field names its unit)."""

from __future__ import annotations

import typing
from functools import cache

from pydantic import BaseModel

from mlipflows.yaml_lines import model_in

# units as the schemas' descriptions write them; a description part starting with one names it
UNITS = (
    "eV/atom",
    "eV/Å",
    "eV",
    "meV/atom",
    "GPa",
    "THz",
    "K",
    "W/(m·K)",
    "kJ/mol",
    "J/(K·mol)",
    "Å³/atom",
    "Å³",
    "Å",
    "g/cm³",
    "s",
)


@cache
def document_classes() -> dict[str, type[BaseModel]]:
    """Task type → its document class (relax and static share :class:`TaskDocument`)."""
    from mlipflows.schemas.elastic import ElasticDocument
    from mlipflows.schemas.eos import EosDocument
    from mlipflows.schemas.opinion import SecondOpinionDocument
    from mlipflows.schemas.phonons import KappaDocument, PhononDocument
    from mlipflows.schemas.ranking import RankingDocument
    from mlipflows.schemas.stability import StabilityDocument
    from mlipflows.schemas.tasks import TaskDocument, TaskType

    out: dict[str, type[BaseModel]] = dict.fromkeys(typing.get_args(TaskType), TaskDocument)
    for cls in (
        ElasticDocument,
        EosDocument,
        SecondOpinionDocument,
        KappaDocument,
        PhononDocument,
        RankingDocument,
        StabilityDocument,
    ):
        out[cls.model_fields["task_type"].default] = cls
    return out


def unit_of(description: str | None) -> str | None:
    """'bulk modulus, Voigt–Reuss–Hill, GPa' → 'GPa'; None when no part is a unit."""
    if not description:
        return None
    parts = description.replace(";", ",").replace(" (", ",").split(",")
    for part in reversed(parts):
        words = part.strip().split()
        if words and words[0] in UNITS:
            return words[0]
    return None


def field_unit(task_type: str, field: str) -> str | None:
    """The unit of ``field`` (dotted for nested models, e.g. ``setup.relax.max_force``)."""
    model = document_classes().get(task_type)
    info = None
    for name in field.split("."):
        if model is None or name not in model.model_fields:
            return None
        info = model.model_fields[name]
        model = model_in(info.annotation)
    return unit_of(info.description) if info is not None else None
