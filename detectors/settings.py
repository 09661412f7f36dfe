"""Settings for the detectors (environment prefix ``DETECT_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict

Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "float32", "bfloat16", "float16"]


class DetectSettings(BaseSettings):
    """Where the policy and the embedding model live, and which device embeds."""

    model_config = SettingsConfigDict(env_prefix="DETECT_", extra="ignore")

    policy_path: Path | None = None
    """A detection policy file; default: the shipped ``policies/detection.yaml``."""
    model_path: Path | None = None
    """A local sentence-transformers model directory; default: the bundled all-MiniLM-L6-v2.
    Every run that does not name a model uses it: the CLI's and the control plane's alike."""
    device: Device = "auto"
    precision: Precision = "auto"
    """The embedder's number format: auto is float16 on CUDA and float32 on the CPU; bfloat16
    (CPU only where native: AVX512-BF16 or AMX) embedded 1.65-1.9x as fast as float32 on the 2-core
    machine the benchmarks ran on."""
    memory_limit: str = "4GB"
    """DuckDB's memory limit during a run (joins and aggregates past it spill to disk); the
    Python side (graph, scoring, embeddings) comes on top."""


@lru_cache(maxsize=1)
def get_settings() -> DetectSettings:
    return DetectSettings()
