"""Settings for the policies package (environment prefix ``POLICIES_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class PoliciesSettings(BaseSettings):
    """Where the licence gate finds the organisation's policy."""

    model_config = SettingsConfigDict(env_prefix="POLICIES_", extra="ignore")

    org_policy: Path | None = None
    """An org policy file to use instead of the shipped ``policies/org.yaml``."""


@lru_cache
def get_settings() -> PoliciesSettings:
    """The settings, read once from the environment."""
    return PoliciesSettings()
