"""Real contract files for the ingest tests: Parquet, JSON Lines and CSV, plain or gzip."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.contract import ACCOUNTS_ARROW_SCHEMA, CALLS_ARROW_SCHEMA

T0 = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)

Row = dict[str, Any]


def call_rows(n: int, start: int = 0, **overrides: Any) -> list[Row]:
    """``n`` contract calls with ids ``c{start}``... and every column filled."""
    return [
        {
            "call_id": f"c{i:07d}",
            "ts": T0 + timedelta(seconds=i),
            "account_id": f"acct{i % 7}",
            "api_key_id": f"key{i % 7}",
            "client_ip": f"10.0.{i % 256}.{i % 250 + 1}",
            "user_agent": "openai-python/1.52.0",
            "endpoint": "/v1/chat/completions",
            "model": "m-large",
            "prompt": f"Solve step by step: {i} + {i * 3} = ?",
            "system_prompt": None if i % 2 else "You are helpful.",
            "response": f"The answer is {i * 4}.",
            "prompt_tokens": 10 + i % 50,
            "completion_tokens": 20 + i % 90,
            "status_code": 200 if i % 10 else 429,
            "latency_ms": 100.5 + i,
            **overrides,
        }
        for i in range(start, start + n)
    ]


def account_rows(n: int, start: int = 0, **overrides: Any) -> list[Row]:
    return [
        {
            "account_id": f"acct{i}",
            "created_at": T0 - timedelta(days=i),
            "email_domain": "example.org",
            "payment_fingerprint": f"pf{i % 3}",
            "signup_ip": f"192.0.2.{i % 250 + 1}",
            "country": "DE",
            "plan": "free",
            "org_id": None,
            **overrides,
        }
        for i in range(start, start + n)
    ]


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def write(path: Path, rows: Iterable[Mapping[str, Any]], schema: pa.Schema | None = None) -> Path:
    """Write ``rows`` in the format the name says (``.parquet``, ``.jsonl``, ``.csv``, ``.gz``)."""
    rows = [dict(r) for r in rows]
    name = path.name
    if name.endswith(".parquet"):
        table = pa.Table.from_pylist(rows, schema=schema) if schema else pa.Table.from_pylist(rows)
        pq.write_table(table, path)
        return path
    opener = gzip.open if name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8", newline="") as f:
        if ".jsonl" in name:
            for row in rows:
                f.write(json.dumps({k: _jsonable(v) for k, v in row.items()}) + "\n")
        else:
            fields = list(dict.fromkeys(k for r in rows for k in r))
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows({k: _jsonable(v) for k, v in r.items()} for r in rows)
    return path


def write_calls(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Contract calls, Parquet with exactly ``CALLS_ARROW_SCHEMA`` (as the gateway writes)."""
    return write(path, rows, CALLS_ARROW_SCHEMA if path.name.endswith(".parquet") else None)


def write_accounts(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    return write(path, rows, ACCOUNTS_ARROW_SCHEMA if path.name.endswith(".parquet") else None)
