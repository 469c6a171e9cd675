"""jobflow Makers: every job takes a chunk (list) of structures and uses one warm model.

A job also takes one structure, or an upstream job's documents (``relax_job.output``)."""

from mlipflows.makers.elastic import ElasticMaker, elastic_flow
from mlipflows.makers.kappa import KappaMaker
from mlipflows.makers.phonons import PhononMaker, phonon_relax_settings
from mlipflows.makers.relax import RelaxMaker, StaticMaker, relax_flow

__all__ = [
    "ElasticMaker",
    "KappaMaker",
    "PhononMaker",
    "RelaxMaker",
    "StaticMaker",
    "elastic_flow",
    "phonon_relax_settings",
    "relax_flow",
]
