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


def test_runs_recorded_before_precision_was_kept_get_the_format_they_used(tmp_path: Path) -> None:
    import duckdb

    from ingest.warehouse import known_migrations

    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))  # a warehouse as distillguard left it at schema version 3
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL)"
    )
    for migration in known_migrations():
        if migration.version <= 3:
            con.execute(migration.sql)
            con.execute(
                "INSERT INTO schema_migrations VALUES ($v, $n, now())",
                {"v": migration.version, "n": migration.name},
            )
    for run_id, device in ((1, "cpu"), (2, "cuda")):
        con.execute(
            "INSERT INTO detection_runs (run_id, started_at, mode, policy_sha256, device) "
            "VALUES ($r, now(), 'full', 'sha', $d)",
            {"r": run_id, "d": device},
        )
    con.close()
    with Warehouse.open(path) as wh:
        assert wh.schema_version() == latest_version()
        rows = wh.fetchall("SELECT run_id, device, precision FROM detection_runs ORDER BY run_id")
    assert rows == [(1, "cpu", "float32"), (2, "cuda", "float16")]
