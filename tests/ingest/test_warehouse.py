"""The warehouse adapter: migrations, version checks and the lock held by another process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ingest.exceptions import WarehouseLocked, WarehouseTooNew
from ingest.warehouse import Warehouse, latest_version


def test_new_warehouse_is_migrated_to_latest(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        assert wh.schema_version() == latest_version()
        tables = {r[0] for r in wh.fetchall("SELECT table_name FROM information_schema.tables")}
    assert {"calls", "accounts", "ingest_ledger", "quarantine", "schema_migrations"} <= tables


def test_reopening_applies_nothing_twice(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse.open(path).close()
    with Warehouse.open(path) as wh:
        assert wh.migrate() == []
        assert wh.scalar("SELECT count(*) FROM schema_migrations") == len(
            wh.fetchall("SELECT version FROM schema_migrations")
        )


def test_newer_warehouse_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    with Warehouse.open(path) as wh:
        wh.execute("INSERT INTO schema_migrations VALUES (9999, 'from_the_future', now())")
    with pytest.raises(WarehouseTooNew, match="schema version 9999"):
        Warehouse.open(path)


def test_held_warehouse_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "w.duckdb"
    Warehouse.open(path).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(path)!r}); "
            "print('held', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseLocked, match="held read-write"):
            Warehouse.open(path)
    finally:
        holder.kill()
        holder.communicate()
