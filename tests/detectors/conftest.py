"""Fixtures: a small simulated population loaded into a real DuckDB warehouse, detected once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from detectors.pipeline import run_detection
from ingest.loader import ingest_file
from ingest.simulator import SimulationConfig, simulate, write
from ingest.warehouse import Warehouse

SCALE = 0.15  # about 380 accounts, 20k calls, one ring of 30 accounts
HARD_NEGATIVES = {  # more of them than the scale would give: six benchmark runners share a template
    "benchmarks.runners": 6,
    "integrators.integrators": 3,
    "cohorts.cohorts": 2,
}


@pytest.fixture(scope="session")
def small_sim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """accounts.parquet, calls.parquet and labels.parquet of a small built-in-corpus simulation."""
    out = tmp_path_factory.mktemp("sim")
    config = SimulationConfig(seed=3).scaled(SCALE).with_overrides(HARD_NEGATIVES)
    write(simulate(config, corpus=None), out)
    return out


@pytest.fixture(scope="session")
def loaded_db(small_sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding the small simulation (never modified: copy it with ``fresh_db``)."""
    path = tmp_path_factory.mktemp("wh") / "loaded.duckdb"
    with Warehouse.open(path) as wh:
        ingest_file(wh, small_sim / "accounts.parquet", "accounts")
        ingest_file(wh, small_sim / "calls.parquet", "calls")
    return path


@pytest.fixture
def fresh_db(loaded_db: Path, tmp_path: Path) -> Path:
    """A private copy of the loaded warehouse, no detection run yet."""
    target = tmp_path / "w.duckdb"
    shutil.copyfile(loaded_db, target)
    return target


@pytest.fixture(scope="session")
def detected_db(loaded_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The loaded warehouse after one full detection run (no embeddings). Treat as read-only."""
    target = tmp_path_factory.mktemp("detected") / "detected.duckdb"
    shutil.copyfile(loaded_db, target)
    with Warehouse.open(target) as wh:
        run_detection(wh, embed_budget=0, device="cpu")
    return target
