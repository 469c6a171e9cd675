"""Training our architectures: data readers, baselines (E0, scale, shift), losses, trainer, metrics."""

from mlipflows.training.config import DatasetSpec, LossWeights, TrainConfig
from mlipflows.training.data import Sample, read_dataset, read_extxyz, read_mlearn
from mlipflows.training.trainer import TrainResult, train

__all__ = [
    "DatasetSpec",
    "LossWeights",
    "Sample",
    "TrainConfig",
    "TrainResult",
    "read_dataset",
    "read_extxyz",
    "read_mlearn",
    "train",
]
