"""The campaign spec: YAML validated by pydantic, errors reported with file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pymatgen.core import Element

from mlipflows.engine import RelaxSettings
from mlipflows.errors import MlipflowsError
from mlipflows.prototypes import PROTOTYPES
from mlipflows.yaml_lines import line_of, load_with_lines


class SpecError(MlipflowsError):
    """A campaign spec that cannot run; the message names the file, line and the fix."""


def _check_element(symbol: Any) -> str:
    if isinstance(symbol, bool):
        # YAML 1.1 reads the bare word No (nobelium) or On as a boolean
        raise ValueError("an element was read as a boolean: quote symbols such as 'No' or 'On'")
    if not isinstance(symbol, str) or not Element.is_valid_symbol(symbol):
        raise ValueError(f"unknown element {symbol!r}")
    return symbol


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RelaxSpec(_Strict):
    """Relaxation settings for every candidate (FIRE + cell filter)."""

    fmax: float = Field(0.05, gt=0, description="eV/Å")
    max_steps: int = Field(500, ge=1)
    cell_filter: Literal["frechet", "hydrostatic", "fixed"] = "frechet"

    def settings(self) -> RelaxSettings:
        """The engine's relaxation settings (the one relaxation concept)."""
        return RelaxSettings(fmax=self.fmax, max_steps=self.max_steps, cell_filter=self.cell_filter)


class PrototypeSpace(_Strict):
    """One prototype with an element list per site label (perovskite: A∈[...], B∈[...], X∈[O])."""

    prototype: str
    sites: dict[str, list[str]]

    @field_validator("prototype")
    @classmethod
    def _known_prototype(cls, v: str) -> str:
        if v.lower() not in PROTOTYPES:
            raise ValueError(f"unknown prototype {v!r}; choose from {', '.join(PROTOTYPES)}")
        return v.lower()

    @field_validator("sites", mode="before")
    @classmethod
    def _elements(cls, v: dict[str, list[Any]], info: ValidationInfo) -> dict[str, list[str]]:
        out = {}
        for label, symbols in v.items():
            if not symbols:
                raise ValueError(f"site {label} has an empty element list")
            out[label] = [_check_element(s) for s in symbols]
        proto = info.data.get("prototype")
        if proto is not None and set(out) != set(PROTOTYPES[proto].labels):
            raise ValueError(f"prototype {proto} has sites {PROTOTYPES[proto].labels}, not {sorted(out)}")
        return out


class StructureSource(_Strict):
    """A user structure file, optionally with species substitutions (each combination)."""

    file: str
    substitutions: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("substitutions", mode="before")
    @classmethod
    def _elements(cls, v: dict[str, list[Any]]) -> dict[str, list[str]]:
        return {_check_element(k): [_check_element(s) for s in vals] for k, vals in v.items()}


class CandidateSpace(_Strict):
    """Where candidates come from."""

    prototypes: list[PrototypeSpace] = Field(default_factory=list)
    structures: list[StructureSource] = Field(default_factory=list)
    charge_balance: bool = Field(
        False,
        description="keep only compositions with a neutral oxidation-state assignment "
        "(pymatgen's ICSD-based guesses: mixed valence and e.g. S⁻¹ allowed)",
    )


class HullSpec(_Strict):
    """How stability is judged.

    mode "mlip": formation energies and the hull from MLIP energies only; elemental references
    (and ``references``) are relaxed with the same model. mode "dft": MLIP energies are
    MP2020-corrected and compared with DFT reference entries (``reference_entries`` file, or
    the Materials Project API when MP_API_KEY is set).
    """

    mode: Literal["mlip", "dft"] = "mlip"
    references: list[str] = Field(default_factory=list, description="structure files (mlip mode)")
    reference_entries: str | None = Field(None, description="JSON list of ComputedEntries (dft mode)")


class SelectSpec(_Strict):
    """Which stored results of an earlier stage go on to a stage.

    ``where`` uses the ``results --where`` syntax (``e_above_hull < 0.05 and born_stable ==
    true``) on the source stage's documents; ``STAGE.field`` reads another earlier stage's
    document of the same structure (``hull.e_above_hull``). ``order_by`` (ascending; a leading
    ``-`` for descending) with ``max`` keeps the top N.
    """

    source: str | None = Field(
        None, description="stage to select from (default: the previous one; 'hull' for the first)"
    )
    where: str | None = None
    order_by: str | None = None
    max: int | None = Field(None, ge=1, description="keep the top N (omit it to keep every one)")

    @field_validator("where")
    @classmethod
    def _readable(cls, v: str | None) -> str | None:
        if v is not None:
            from mlipflows.results import WhereError, parse_where

            try:
                parse_where(v)
            except WhereError as exc:
                raise ValueError(str(exc)) from None
        return v


class StageSpec(_Strict):
    """One stage of a funnel: what it selects, what it runs (``kind``), with which settings."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    kind: str
    select: SelectSpec = Field(default_factory=SelectSpec)
    settings: dict[str, Any] = Field(default_factory=dict, description="the kind's options (CLI names)")
    model: str | None = Field(None, description="model of this stage (default: the campaign's)")
    chunk_size: int | None = Field(None, ge=1)
    max_failed_fraction: float = Field(
        0.5, ge=0, le=1, description="stop the campaign when more of the stage's structures fail"
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, v: str) -> str:
        from mlipflows.campaign.stages import STAGE_KINDS

        if v not in STAGE_KINDS:
            raise ValueError(f"unknown stage kind {v!r}; choose from {', '.join(sorted(STAGE_KINDS))}")
        return v

    @field_validator("settings")
    @classmethod
    def _settings_of_kind(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        kind = info.data.get("kind")
        if kind is None:
            return v
        from mlipflows.campaign.stages import stage_class

        model = stage_class(kind).settings_model
        try:
            return model(**v).model_dump()
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or kind}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"{problems} (a {kind} stage takes {', '.join(model.model_fields)})") from None


class SurrogateSpec(_Strict):
    """Screen with a fast student of the campaign's model (the teacher); the teacher decides
    everything near the threshold. See :mod:`mlipflows.campaign.surrogate`."""

    student: str = Field("mpnice-sevennet-0", description="base student: registry name or checkpoint")
    budget: int = Field(300, ge=10, description="candidates the teacher labels (farthest-point sampled)")
    threshold: float = Field(0.05, ge=0, description="e_above_hull of interest (eV/atom)")
    margin: float | None = Field(
        None, ge=0, description="fixed margin (eV/atom); default: from the student's held-out error"
    )
    margin_quantile: float = Field(
        0.98, gt=0, lt=1, description="quantile of the held-out |ΔE| per atom that sets the margin"
    )
    min_margin: float = Field(0.03, ge=0, description="the margin is never below this (eV/atom)")
    calibration_fraction: float = Field(
        0.2, gt=0, lt=1, description="labelled candidates held out of fine-tuning to measure the error"
    )
    replay_size: int = Field(600, ge=0, description="base-pool structures replayed while fine-tuning")
    epochs: int = Field(40, ge=1)
    max_time_s: float = Field(900, gt=0, description="fine-tuning time box (s)")
    lr: float = Field(1e-3, gt=0)
    seed: int = 0


def _stage_prefixes(select: SelectSpec) -> list[tuple[str, str]]:
    """(``where``/``order_by``, STAGE) for every ``STAGE.field`` name a selection uses."""
    from mlipflows.results import parse_where

    out = []
    names = list(parse_where(select.where)) if select.where else []
    out += [("where", n.split(".", 1)[0]) for n in names if "." in n]
    if select.order_by and "." in select.order_by:
        out.append(("order_by", select.order_by.lstrip("-").split(".", 1)[0]))
    return out


class SpecFieldError(ValueError):
    """A problem a check across fields finds in one field: ``loc`` names it, so the message
    gets that field's line, not the spec's first."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


class CampaignSpec(_Strict):
    """A stability campaign, and optionally a funnel of further stages (``stages``)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str = "sevennet-0"
    device: str = "cpu"
    chunk_size: int = Field(128, ge=1)
    max_candidates: int = Field(20_000, ge=1, description="refuse larger spaces (typo guard)")
    relax: RelaxSpec = Field(default_factory=RelaxSpec)
    candidates: CandidateSpace
    hull: HullSpec = Field(default_factory=HullSpec)
    stages: list[StageSpec] = Field(default_factory=list)
    surrogate: SurrogateSpec | None = Field(None, description="screen with a fine-tuned student")
    base_dir: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _stage_names_and_sources(self) -> CampaignSpec:
        from mlipflows.selection import suggest

        seen = ["relax", "hull"]
        for k, stage in enumerate(self.stages):
            if stage.name in seen:
                raise SpecFieldError(
                    ("stages", k, "name"), f"{stage.name!r} is used twice (relax and hull are taken)"
                )
            source = stage.select.source
            if source is not None and source not in seen:
                raise SpecFieldError(
                    ("stages", k, "select", "source"),
                    f"{source!r} is not an earlier stage ({', '.join(seen)}){suggest(source, seen)}",
                )
            later = [s.name for s in self.stages[k:]]
            for key, prefix in _stage_prefixes(stage.select):
                if prefix in later:  # it has not run when this stage selects
                    raise SpecFieldError(
                        ("stages", k, "select", key),
                        f"{prefix}.… reads stage {prefix!r}, which runs "
                        f"{'as' if prefix == stage.name else 'after'} this one; a stage reads earlier "
                        f"stages only ({', '.join(seen)})",
                    )
            seen.append(stage.name)
        return self

    @model_validator(mode="after")
    def _model_files_next_to_the_spec(self) -> CampaignSpec:
        """Checkpoint paths in model specs are relative to the spec file, as data paths are
        (also inside ``PATH+zbl``, ``PATH@HEAD``, ``sevennet:PATH``)."""
        self.model = _spec_relative_model(self.model, self.base_dir)
        for stage in self.stages:
            if stage.model is not None:
                stage.model = _spec_relative_model(stage.model, self.base_dir)
        if self.surrogate is not None:
            self.surrogate.student = _spec_relative_model(self.surrogate.student, self.base_dir)
        return self

    def stage_source(self, k: int) -> str:
        """The stage that stage ``k`` selects from."""
        stage = self.stages[k]
        if stage.select.source:
            return stage.select.source
        return "hull" if k == 0 else self.stages[k - 1].name

    @model_validator(mode="after")
    def _nonempty(self) -> CampaignSpec:
        if not self.candidates.prototypes and not self.candidates.structures:
            raise ValueError(
                "the candidate space is empty: give candidates.prototypes or candidates.structures"
            )
        return self

    def resolve(self, path: str) -> Path:
        """Paths in a spec are relative to the spec file."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


def _spec_relative_model(model: str, base: Path) -> str:
    """``model`` with a relative checkpoint path that exists next to the spec made absolute."""
    if base == Path(".") or Path(model).is_absolute():
        return model
    kind, colon, rest = model.partition(":")
    prefix, body = (f"{kind}:", rest) if colon and kind in ("sevennet", "chgnet") else ("", model)
    file, plus, suffix = body.partition("+")
    stem, at, head = file.rpartition("@") if "@" in file else (file, "", "")
    for name, tail in ((file, ""), (stem, f"{at}{head}")):
        near = base / Path(name).expanduser()
        if name and not Path(name).is_absolute() and near.is_file():
            return f"{prefix}{near.resolve()}{tail}{plus}{suffix}"
    return model


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a campaign YAML; every problem is reported as ``file:line: message``."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"{path}: cannot read campaign spec ({exc.strerror})") from exc
    try:
        data, lines = load_with_lines(text)
    except Exception as exc:  # yaml errors carry their own line
        raise SpecError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SpecError(f"{path}:1: a campaign spec is a mapping with name, model, candidates, ...")
    try:
        spec = CampaignSpec(**data, base_dir=path.parent)
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            loc, msg = tuple(err["loc"]), err["msg"]
            cause = (err.get("ctx") or {}).get("error")
            if isinstance(cause, SpecFieldError):  # a check across fields that knows its field
                loc, msg = loc + cause.loc, str(cause)
            line = line_of(lines, loc)
            where = ".".join(str(p) for p in loc) or "(top level)"
            messages.append(f"{path}:{line}: {where}: {msg}")
        raise SpecError("\n".join(messages)) from None
    return spec
