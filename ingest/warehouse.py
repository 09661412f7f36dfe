"""The one adapter that owns a DuckDB warehouse connection.

SQL is built elsewhere by pure functions and run here. Values are always bound as parameters
(``$name``); identifiers that cannot be bound come from allow-lists in the code that builds the SQL.

Opening a warehouse applies any pending migrations from ``ingest/migrations`` (``NNNN_name.sql``,
applied in order, each in its own transaction). A warehouse written by a newer distillguard is
refused rather than guessed at.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ingest.exceptions import MigrationError, WarehouseLocked, WarehouseTooNew
from ingest.sql import literal

_MEMORY = re.compile(r"^\d+(\.\d+)?\s*([KMGT]i?B|[KMGT]B?)$", re.IGNORECASE)


def checked_size(limit: str, setting: str) -> str:
    """``limit`` stripped, if it is a size DuckDB takes (``3GB``, ``512MiB``); else ValueError
    naming ``setting``, where the value came from."""
    text = limit.strip()
    if not _MEMORY.match(text):
        raise ValueError(f"{setting}={limit!r} is not a size such as '3GB' or '512MiB'")
    return text


Params = Mapping[str, Any] | Sequence[Any] | None

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema step: its version number, name and SQL text."""

    version: int
    name: str
    sql: str


def known_migrations() -> list[Migration]:
    """Every migration shipped with this distillguard, in order."""
    found: list[Migration] = []
    for entry in resources.files("ingest.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number: {versions}")
    return found


def latest_version() -> int:
    """The schema version this distillguard writes."""
    migrations = known_migrations()
    return migrations[-1].version if migrations else 0


class Warehouse:
    """A DuckDB warehouse file (or ``:memory:``) with its schema brought up to date."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(
        cls, path: str | Path = "distillguard.duckdb", *, read_only: bool = False
    ) -> Warehouse:
        """Open (creating if needed) and migrate the warehouse at ``path``."""
        target = str(path)
        try:
            con = duckdb.connect(target, read_only=read_only)
        except duckdb.IOException as exc:
            message = str(exc)
            if "lock" in message.lower():
                holder = re.search(r"PID (\d+)", message)
                who = f"process {holder[1]}" if holder else "another process"
                raise WarehouseLocked(
                    f"the warehouse {target} is held read-write by {who} (for example "
                    "`distillguard serve`); stop it, or run this through that service"
                ) from exc
            raise
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")  # DuckDB would draw on stdout
        warehouse = cls(con, target)
        if read_only:
            warehouse._check_version()
        else:
            warehouse.migrate()
        return warehouse

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running SQL ---------------------------------------------------------------------------
    def execute(self, sql: str, params: Params = None) -> duckdb.DuckDBPyConnection:
        """Run one statement with bound parameters."""
        return self.con.execute(sql, params) if params is not None else self.con.execute(sql)

    def fetchall(self, sql: str, params: Params = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def fetchone(self, sql: str, params: Params = None) -> tuple[Any, ...] | None:
        """The first row; the rest of the result is run to its end so the connection is free."""
        cursor = self.execute(sql, params)
        row = cursor.fetchone()
        if row is not None:
            cursor.complete()
        return row

    def scalar(self, sql: str, params: Params = None) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def arrow(self, sql: str, params: Params = None) -> pa.Table:
        """The result as an Arrow table (through a relation: no extra copy of the rows)."""
        return self.con.sql(sql, params=params).to_arrow_table()

    def records(self, sql: str, params: Params = None) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    @contextmanager
    def memory_limit(self, limit: str, setting: str) -> Iterator[None]:
        """Cap DuckDB's memory (larger work spills to disk) and let it write rows in any order
        for the block, then restore both. ``setting`` names where ``limit`` came from, for the
        error when it is not a size such as ``3GB`` or ``512MiB``."""
        text = checked_size(limit, setting)
        previous = self.scalar("SELECT current_setting('memory_limit')")
        order = self.scalar("SELECT current_setting('preserve_insertion_order')")
        self.execute("SET memory_limit = " + literal(text))
        self.execute("SET preserve_insertion_order = false")
        try:
            yield
        finally:
            self.execute("SET memory_limit = " + literal(str(previous)))
            self.execute(f"SET preserve_insertion_order = {'true' if order else 'false'}")

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Everything inside commits together or not at all."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        else:
            self.con.execute("COMMIT")

    # -- schema --------------------------------------------------------------------------------
    def schema_version(self) -> int:
        exists = self.scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
        )
        if not exists:
            return 0
        return int(self.scalar("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    def _check_version(self) -> int:
        current = self.schema_version()
        newest = latest_version()
        if current > newest:
            raise WarehouseTooNew(
                f"the warehouse {self.path} has schema version {current}, but this distillguard "
                f"only knows up to {newest}; upgrade distillguard to open it"
            )
        return current

    def migrate(self) -> list[int]:
        """Apply pending migrations in order; return the versions applied."""
        current = self._check_version()
        self.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        applied: list[int] = []
        for migration in known_migrations():
            if migration.version <= current:
                continue
            try:
                with self.transaction() as con:
                    con.execute(migration.sql)
                    con.execute(
                        "INSERT INTO schema_migrations VALUES ($v, $n, now())",
                        {"v": migration.version, "n": migration.name},
                    )
            except duckdb.Error as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed on {self.path}: "
                    f"{exc}; the warehouse is unchanged from version {current}"
                ) from exc
            applied.append(migration.version)
            current = migration.version
        return applied
