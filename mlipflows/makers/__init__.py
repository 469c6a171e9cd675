"""jobflow Makers: every job takes a chunk (list) of structures and uses one warm model."""

from mlipflows.makers.kappa import KappaMaker
from mlipflows.makers.phonons import PhononMaker, phonon_relax_settings
from mlipflows.makers.relax import RelaxMaker, StaticMaker, relax_flow

__all__ = ["KappaMaker", "PhononMaker", "RelaxMaker", "StaticMaker", "phonon_relax_settings", "relax_flow"]
