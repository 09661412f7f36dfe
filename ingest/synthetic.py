"""Synthetic call logs in the contract, generated inside DuckDB (for benchmarks and tests).

Realistic in shape, not in behaviour (that is the simulator's job): random 32-hex call ids,
timestamps over six weeks, 50,000 accounts, short templated prompts and about 1 in 100 long ones
(2-9 KB), a third with a system prompt. Deterministic for a given number of rows.
"""

# ruff: noqa: S608  -- SQL text is built here from contract allow-lists and sql.ident()-quoted
# names; every value is bound as a $parameter.

from __future__ import annotations

from pathlib import Path

import duckdb

from ingest.contract import CALL_COLUMNS
from ingest.formats import Format
from ingest.sql import literal

_SELECT = """
SELECT
  md5(i::VARCHAR || 'call') AS call_id,
  TIMESTAMPTZ '2026-10-01 00:00:00+00'
    + to_microseconds((hash(i, 1) % 3628800000000)::BIGINT) AS ts,
  'acct_' || (hash(i, 2) % 50000)::VARCHAR AS account_id,
  'key_' || (hash(i, 2) % 60000)::VARCHAR AS api_key_id,
  '10.' || (hash(i, 3) % 256)::VARCHAR || '.' || (hash(i, 4) % 256)::VARCHAR || '.'
    || (hash(i, 5) % 256)::VARCHAR AS client_ip,
  ['openai-python/1.52.0', 'anthropic-python/0.40.0', 'curl/8.5.0', 'Mozilla/5.0']
    [1 + (hash(i, 6) % 4)::BIGINT] AS user_agent,
  ['/v1/chat/completions', '/v1/messages'][1 + (hash(i, 7) % 2)::BIGINT] AS endpoint,
  ['large', 'medium', 'small'][1 + (hash(i, 8) % 3)::BIGINT] AS model,
  CASE WHEN hash(i, 9) % 100 = 0
    THEN repeat('Explain step by step, showing all of your reasoning. ',
                40 + (hash(i, 10) % 130)::INTEGER)
    ELSE ['Solve: what is ', 'Translate to French: ', 'Write a haiku about ',
          'Summarise this: ', 'Explain step by step why '][1 + (hash(i, 11) % 5)::BIGINT]
      || (hash(i, 12) % 100000)::VARCHAR || ' apples and '
      || (hash(i, 13) % 1000)::VARCHAR || ' pears'
  END AS prompt,
  CASE WHEN hash(i, 14) % 3 = 0 THEN 'You are a helpful assistant.' END AS system_prompt,
  'Sure. The answer is ' || (hash(i, 15) % 100000)::VARCHAR AS response,
  (10 + hash(i, 16) % 500)::BIGINT AS prompt_tokens,
  (10 + hash(i, 17) % 2000)::BIGINT AS completion_tokens,
  CASE WHEN hash(i, 18) % 50 = 0 THEN 429 ELSE 200 END::INTEGER AS status_code,
  (hash(i, 19) % 5000000) / 1000.0 AS latency_ms
FROM range($start, $stop) t(i)
"""


def write_synthetic_calls(path: Path, rows: int, fmt: Format, *, start: int = 0) -> Path:
    """Write ``rows`` synthetic contract calls (ids from ``start``) to ``path`` as ``fmt``."""
    options = {"parquet": "FORMAT parquet", "jsonl": "FORMAT json", "csv": "FORMAT csv, HEADER"}
    names = ", ".join(c.name for c in CALL_COLUMNS)
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute("SET TimeZone = 'UTC'")
        con.execute(
            f"COPY (SELECT {names} FROM ({_SELECT})) TO {literal(str(path))} ({options[fmt]})",
            {"start": start, "stop": start + rows},
        )
    finally:
        con.close()
    return path
