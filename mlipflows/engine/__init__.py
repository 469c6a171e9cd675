"""Batched engine: flat batches, neighbour lists, FIRE + cell filters, in-flight swapping."""

from mlipflows.engine.autobatch import BatchBudget
from mlipflows.engine.batch import Batch
from mlipflows.engine.fire import FireParams
from mlipflows.engine.relax import RelaxSettings, relax
from mlipflows.engine.results import SystemResult
from mlipflows.engine.static import static

__all__ = ["Batch", "BatchBudget", "FireParams", "RelaxSettings", "SystemResult", "relax", "static"]
