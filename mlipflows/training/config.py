"""Training configuration (the YAML that ``mlipflows train CONFIG.yaml`` reads).

Example::

    name: mpnice-si
    architecture: mpnice
    model: {n_channels: 32, n_blocks: 2, cutoff: 5.0}
    datasets:
      - {path: ../shared/data/mlearn/Si_training.json.gz, head: pbe, validation_fraction: 0.1}
      - {store: {campaign: demo, model: sevennet-0, task_type: static}, head: sevennet}
    loss: {energy: 1.0, forces: 10.0, stress: 0.0}
    epochs: 100
    output: models/mpnice-si.pt
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from mlipflows.errors import MlipflowsError
from mlipflows.training.store_data import StoreQuery
from mlipflows.yaml_lines import validate_yaml


class ConfigError(MlipflowsError):
    """A training or fine-tuning config that cannot be used, said as ``file:line: message``."""


class DatasetSpec(BaseModel):
    """One labelled data set, read for one readout head: a file (``path``) or stored results
    of ours (``store``: a :class:`~mlipflows.training.store_data.StoreQuery`)."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = None
    store: StoreQuery | None = None
    format: Literal["auto", "mlearn", "extxyz"] = "auto"
    head: str = "default"
    weight: float = Field(1.0, ge=0.0, description="loss weight of every structure of this set")
    validation_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    validation_path: Path | None = Field(
        None, description="explicit validation file (overrides the fraction)"
    )
    limit: int | None = Field(None, ge=1, description="use only the first N structures")

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSpec:
        if (self.path is None) == (self.store is None):
            raise ValueError("give exactly one of 'path' (a data file) and 'store' (a results query)")
        if self.store is not None and self.validation_path is not None:
            raise ValueError("a 'store' data set is split by 'validation_fraction', not 'validation_path'")
        return self


class LossWeights(BaseModel):
    """Weights of the mean squared errors of energy per atom (eV/atom)², force components
    (eV/Å)² and stress components (eV/Å³)²."""

    model_config = ConfigDict(extra="forbid")

    energy: float = 1.0
    forces: float = 10.0
    stress: float = 0.0


class TrainConfig(BaseModel):
    """Everything a training run needs; stored in the checkpoint it produces."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    architecture: str = "mpnice"
    model: dict[str, Any] = Field(default_factory=dict, description="architecture options")
    datasets: list[DatasetSpec]
    loss: LossWeights = Field(default_factory=LossWeights)
    e0: dict[str, dict[str, float]] | None = Field(
        None, description="fixed isolated-atom energies per head {head: {element: eV}}; default least squares"
    )
    fit_shift: bool | Literal["element"] = Field(
        False,
        description="also fit a per-neighbour energy shift: one (true) or one per element ('element'; "
        "see training.baseline)",
    )
    epochs: int = Field(100, ge=1)
    max_steps: int | None = Field(None, ge=1)
    max_time_s: float | None = Field(None, gt=0, description="stop (keeping the best model) after this long")
    batch_size: int = Field(4, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-6, ge=0)
    warmup_steps: int = Field(20, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.05, ge=0, le=1)
    ema_decay: float = Field(0.99, ge=0, lt=1)
    patience: int = Field(25, ge=1, description="epochs without validation improvement before stopping")
    grad_clip: float = Field(10.0, gt=0)
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "cpu"
    threads: int | None = Field(1, ge=1, description="torch CPU threads")
    output: Path = Path("model.pt")

    @field_validator("architecture")
    @classmethod
    def _known_architecture(cls, value: str) -> str:
        from difflib import get_close_matches

        from mlipflows.models.base import known_architectures

        name = value.replace("-", "_")  # nequip-lr, as `distill --architecture` spells it
        known = sorted(known_architectures())
        if name not in known:
            near = get_close_matches(name, known, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            raise ValueError(f"unknown architecture {value!r}: {hint}known: {', '.join(known)}")
        return name

    @field_validator("model")
    @classmethod
    def _model_options(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        """Options of the architecture's config (checked before any data are read)."""
        from dataclasses import fields
        from difflib import get_close_matches

        from mlipflows.models.base import ARCHITECTURES

        arch = ARCHITECTURES.get(str(info.data.get("architecture")))
        config = getattr(arch, "config_class", None)
        if config is None:
            return value
        names = [f.name for f in fields(config)]
        for key in value:
            if key not in names:
                near = get_close_matches(key, names, n=2)
                hint = f"did you mean {' or '.join(near)}? " if near else ""
                raise ValueError(
                    f"{key!r} is not an option of {arch.architecture}: {hint}options: {', '.join(names)}"
                )
        return value

    @classmethod
    def from_yaml(cls, path: str | Path) -> Self:
        """Read a YAML config; relative data/output paths stay relative to the working directory.
        Every mistake is a :class:`ConfigError` of ``file:line: field: message`` lines."""
        return validate_yaml(cls, path, ConfigError)

    def check_output(self, force: bool = False) -> None:
        """Refuse to write over a model mlipflows ships (a README example run as is would
        replace it) unless ``force``."""
        from mlipflows.models.checkpoint import PACKAGED

        out = Path(self.output).resolve()
        if not force and out.parent == PACKAGED.resolve() and out.is_file():
            raise ConfigError(
                f"output {self.output} is the packaged model {out.stem!r} that mlipflows ships: write "
                "elsewhere (--output my-model.pt), or pass --force to retrain it in place"
            )

    def with_updates(self, **updates: Any) -> Self:
        """A copy with some settings replaced, validated as the YAML's were (``epochs=0`` fails)."""
        try:
            return type(self).model_validate({**self.model_dump(), **updates})
        except ValidationError as exc:
            raise ConfigError(
                "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            ) from None

    @property
    def heads(self) -> list[str]:
        """Heads in order of first appearance among the datasets."""
        return list(dict.fromkeys(d.head for d in self.datasets))
