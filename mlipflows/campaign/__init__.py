"""Stability campaigns: YAML spec → candidates → chunked relax jobs → hull."""

from mlipflows.campaign.spec import CampaignSpec, SpecError, load_spec

__all__ = ["CampaignSpec", "SpecError", "load_spec"]
