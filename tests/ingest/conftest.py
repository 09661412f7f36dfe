"""Fixtures for the ingest tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.warehouse import Warehouse


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    """A fresh warehouse file in ``tmp_path``, migrated to the latest schema."""
    with Warehouse.open(tmp_path / "w.duckdb") as warehouse:
        yield warehouse
