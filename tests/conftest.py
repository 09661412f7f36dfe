"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_PROMPTS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "prompts"
_SETTINGS_PREFIXES = (
    "DISTILLGUARD_",
    "GUARD_",
    "INGEST_",
    "DETECT_",
    "DISTILL_",
    "POLICIES_",
    "DASHBOARDS_",
)


@pytest.fixture(autouse=True)
def _clean_settings_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep the developer's shell from leaking settings into a test."""
    for name in list(os.environ):
        if name.startswith(_SETTINGS_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture
def shared_prompts() -> Path:
    """The real public prompt sets beside the project; the test is skipped where they are absent."""
    if not SHARED_PROMPTS.is_dir():
        pytest.skip(f"shared prompt sets not found at {SHARED_PROMPTS}")
    return SHARED_PROMPTS
