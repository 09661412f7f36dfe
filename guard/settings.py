"""The gateway's settings: one ``BaseSettings`` read from ``GUARD_*`` variables.

The ``distillguard gateway`` command turns its options into these variables, so every worker
process (uvicorn spawns them) reads the same configuration.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from guard.proxies import parse_networks

Protocol = Literal["openai", "anthropic"]
Durability = Literal["durable", "relaxed"]

DEFAULT_STATE = Path("distillguard-state.json")
DEFAULT_SPOOL = Path("distillguard-spool")


class GuardSettings(BaseSettings):
    """Everything a gateway worker needs; see ``distillguard gateway --help`` for the options."""

    model_config = SettingsConfigDict(env_prefix="GUARD_", extra="ignore")

    upstream: str = Field(default="http://127.0.0.1:9000", description="Base URL of the model API.")
    upstream_protocol: Protocol = "openai"
    upstream_key_env: str = Field(
        default="UPSTREAM_API_KEY", description="Name of the variable holding the upstream key."
    )
    upstream_timeout_s: float = Field(
        default=600.0, gt=0, description="Read timeout towards upstream."
    )
    upstream_connect_timeout_s: float = Field(default=5.0, gt=0)

    state: Path = DEFAULT_STATE
    redis: str | None = Field(
        default=None, description="Redis URL for shared state and rate limits."
    )
    redis_prefix: str = "distillguard:"
    state_poll_s: float = Field(
        default=1.0, gt=0, description="How often workers look for new state."
    )

    spool: Path = DEFAULT_SPOOL
    durability: Durability = "durable"
    segment_max_bytes: int = Field(
        default=64 * 1024 * 1024, gt=0, description="Rotate past this size."
    )
    segment_max_age_s: float = Field(default=60.0, gt=0, description="Rotate a journal this old.")

    max_body_bytes: int = Field(default=4 * 1024 * 1024, gt=0)
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated IPs/CIDRs of proxies whose X-Forwarded-For is believed.",
    )

    rpm_per_key: int = Field(default=600, gt=0, description="Requests per minute for one key.")
    rpm_per_account: int = Field(
        default=1200, gt=0, description="Requests per minute for one account."
    )
    tpm_per_key: int = Field(default=1_000_000, gt=0, description="Tokens per minute for one key.")
    tpm_per_account: int = Field(
        default=2_000_000, gt=0, description="Tokens per minute for one account."
    )
    burst_s: float = Field(
        default=10.0, gt=0, description="Burst allowance: this many seconds of a limit at once."
    )
    throttled_factor: float = Field(
        default=0.1, gt=0, le=1, description="Throttled accounts get this fraction of every limit."
    )
    restricted_max_tokens: int = Field(
        default=256, gt=0, description="Output cap for restricted accounts."
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, value: str) -> str:
        parse_networks(value.split(","))  # a ValueError names the bad entry
        return value


@lru_cache(maxsize=1)
def get_settings() -> GuardSettings:
    """The process's settings (tests pass their own ``GuardSettings`` to ``create_app``)."""
    return GuardSettings()
