"""The SQL builders are pure functions: their text is checked here, their effect elsewhere."""

from __future__ import annotations

import duckdb
import pytest

from ingest import sql
from ingest.contract import ACCOUNT_COLUMNS, CALL_COLUMNS
from ingest.exceptions import UnreadableInput

BY_NAME = {c.name: c for c in CALL_COLUMNS}


def test_identifiers_from_files_are_quoted() -> None:
    assert sql.ident('we"ird name') == '"we""ird name"'
    assert sql.literal("it's") == "'it''s'"


@pytest.mark.parametrize(
    ("column", "source_type", "expected"),
    [
        ("prompt", "VARCHAR", '"prompt"'),
        ("call_id", "BIGINT", 'CAST("call_id" AS VARCHAR)'),
        ("ts", "TIMESTAMP WITH TIME ZONE", 'CAST("ts" AS TIMESTAMPTZ)'),
        ("ts", "TIMESTAMP_NS", 'CAST("ts" AS TIMESTAMPTZ)'),
        ("prompt_tokens", "INTEGER", 'TRY_CAST("prompt_tokens" AS BIGINT)'),
        ("latency_ms", "VARCHAR", 'TRY_CAST("latency_ms" AS DOUBLE)'),
    ],
)
def test_typed_expressions(column: str, source_type: str, expected: str) -> None:
    assert sql.typed_expr(BY_NAME[column], sql.ident(column), source_type) == expected


@pytest.mark.parametrize(
    ("column", "source_type"),
    [("ts", "BIGINT"), ("prompt_tokens", "BOOLEAN"), ("prompt", "VARCHAR[]"), ("model", "BLOB")],
)
def test_types_that_can_never_fit_are_refused(column: str, source_type: str) -> None:
    with pytest.raises(UnreadableInput, match=f"column {column} has type"):
        sql.typed_expr(BY_NAME[column], sql.ident(column), source_type)


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", 12), ("12.0", 12), (" 7 ", 7), ("1e3", 1000), ("12.5", None), ("abc", None)],
)
def test_integer_text_is_parsed_strictly(text: str, value: int | None) -> None:
    expr = sql.typed_expr(BY_NAME["prompt_tokens"], "$v", "VARCHAR")
    assert duckdb.execute(f"SELECT {expr}", {"v": text}).fetchall() == [(value,)]


def test_stage_select_orders_reasons_and_keeps_raw_only_for_bad_rows() -> None:
    select = sql.stage_select(
        CALL_COLUMNS,
        {"call_id": "VARCHAR", "ts": "VARCHAR", "account_id": "VARCHAR", "prompt": "VARCHAR"},
        "src",
        line="n",
        raw="r",
    )
    assert "CASE WHEN __reason IS NOT NULL THEN __raw END AS __raw" in select
    missing = select.index("'missing required field: call_id'")
    assert missing < select.index("'unparseable timestamp: ts'")
    assert "wrong type: prompt_tokens" not in select  # absent columns cannot be wrong
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(
        "CREATE TABLE src AS SELECT * FROM (VALUES "
        "(1, 'c1', '2026-10-01', 'a', 'p', 'row1'), (2, NULL, 'x', 'a', 'p', 'row2'), "
        "(3, 'c3', 'x', 'a', 'p', 'row3')) t(n, call_id, ts, account_id, prompt, r)"
    )
    got = con.execute(f"SELECT __line, __reason, __raw FROM ({select}) ORDER BY 1").fetchall()
    assert got == [
        (1, None, None),
        (2, "missing required field: call_id", "row2"),
        (3, "unparseable timestamp: ts", "row3"),
    ]


def test_accounts_upsert_updates_every_column_but_the_key() -> None:
    statement = sql.insert_rows("accounts", exclusions=True)
    assert 'ON CONFLICT ("account_id") DO UPDATE SET' in statement
    for column in ACCOUNT_COLUMNS[1:]:
        assert f'"{column.name}" = excluded."{column.name}"' in statement
    assert "ON CONFLICT" not in sql.insert_rows("calls", exclusions=False)
