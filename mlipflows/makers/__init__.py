"""jobflow Makers: every job takes a chunk (list) of structures and uses one warm model."""

from mlipflows.makers.relax import RelaxMaker, StaticMaker, relax_flow

__all__ = ["RelaxMaker", "StaticMaker", "relax_flow"]
