"""Run the SQL built in :mod:`detectors.sql` through the warehouse adapter.

Each statement gets exactly the parameters it names (``$name``), picked from one dictionary of run
parameters, so the SQL builders and the runner agree on names without passing them one by one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import duckdb
import pyarrow as pa

from ingest.warehouse import Warehouse

_PARAM = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def bind(sql: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters ``sql`` names, taken from ``params``; a missing one is a ``KeyError``."""
    names = set(_PARAM.findall(sql))
    missing = sorted(names - set(params))
    if missing:
        raise KeyError(f"SQL parameters without a value: {', '.join(missing)}")
    return {name: params[name] for name in names}


def run(
    wh: Warehouse, sql: str, params: Mapping[str, Any] | None = None
) -> duckdb.DuckDBPyConnection:
    """Execute one statement with the parameters it names."""
    return wh.execute(sql, bind(sql, params or {}))


def records(
    wh: Warehouse, sql: str, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    return wh.records(sql, bind(sql, params or {}))


def register(wh: Warehouse, name: str, table: pa.Table) -> None:
    """Make an Arrow table visible to SQL as a temporary table ``name`` (replacing any before)."""
    view = f"_arrow_{name}"
    wh.con.register(view, table)
    try:
        wh.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {view}")  # noqa: S608
    finally:
        wh.con.unregister(view)
