"""Settings of the control plane (environment prefix ``DASHBOARDS_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from guard.settings import DEFAULT_SPOOL, DEFAULT_STATE

CookieSecure = Literal["auto", "always", "never"]


class DashboardsSettings(BaseSettings):
    """Where the warehouse, spool and published state are, and how often the loop works."""

    model_config = SettingsConfigDict(env_prefix="DASHBOARDS_", extra="ignore")

    db: Path = Path("distillguard.duckdb")
    spool: Path | None = Field(default=DEFAULT_SPOOL, description="Gateway spool to ingest from.")
    state: Path = DEFAULT_STATE
    redis: str | None = Field(default=None, description="Redis URL of the published state.")
    redis_prefix: str = "distillguard:"

    background: bool = Field(default=True, description="Run the ingest/detection loop.")
    ingest_interval_s: float = Field(default=2.0, gt=0, description="How often the spool is read.")
    detect_interval_s: float = Field(
        default=300.0, gt=0, description="Scheduled detection every this many seconds."
    )
    detect_embed_budget: int | None = Field(
        default=None, ge=0, description="Prompts embedded per run; default: the detection policy."
    )
    detect_device: Literal["auto", "cpu", "cuda"] = "auto"

    session_ttl_s: float = Field(default=8 * 3600, gt=0, description="Sessions expire after this.")
    signin_max_failures: int = Field(
        default=5, ge=1, description="Failed sign-ins for one username that lock it for a window."
    )
    signin_window_s: float = Field(
        default=900.0, gt=0, description="The window over which failed sign-ins are counted."
    )
    cookie_secure: CookieSecure = Field(
        default="auto", description="Secure cookies: auto = when the request came over TLS."
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra origins allowed to post (e.g. the public URL behind a proxy).",
    )
    page_size: int = Field(default=50, gt=0, le=1000)
    graph_max_attributes: int = Field(
        default=40, gt=0, description="Shared-attribute nodes per kind drawn in a ring's graph."
    )
    dismiss_margin: float = Field(
        default=0.1, ge=0, description="A dismissed account is flagged again past score + margin."
    )


@lru_cache(maxsize=1)
def get_settings() -> DashboardsSettings:
    return DashboardsSettings()
