"""Settings for the importers (environment prefix ``INGEST_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class IngestSettings(BaseSettings):
    """How much memory and how large a read block an import may use."""

    model_config = SettingsConfigDict(env_prefix="INGEST_", extra="ignore")

    memory_limit: str = Field(
        default="3GB",
        description="DuckDB memory_limit while importing; larger work spills to disk.",
    )
    temp_dir: Path | None = Field(
        default=None,
        description="Where JSON Lines and CSV are staged while importing; default: the system's.",
    )
    block_bytes: int = Field(
        default=32 << 20,
        ge=1 << 16,
        description="JSON Lines and CSV are read in blocks of about this many bytes.",
    )
    max_record_bytes: int = Field(
        default=64 << 20,
        ge=1 << 16,
        description="A JSON line or CSV record longer than this refuses its file (a file without "
        "line breaks, or with a quote left open, would otherwise be held in memory whole).",
    )


@lru_cache(maxsize=1)
def get_settings() -> IngestSettings:
    """The settings, read once from the environment."""
    return IngestSettings()
