"""Bad rows go to the quarantine with reason and line; bad files are refused with nothing loaded."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.exceptions import UnreadableInput
from ingest.loader import ingest_file
from ingest.warehouse import Warehouse
from tests.ingest.factories import call_rows, write, write_calls


def quarantined(wh: Warehouse) -> list[tuple[int, str]]:
    return [
        (int(line), str(reason))
        for line, reason in wh.fetchall("SELECT line, reason FROM quarantine ORDER BY line")
    ]


def good_line(i: int, **changes: object) -> str:
    row = {
        k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in call_rows(1, i)[0].items()
    }
    row.update(changes)
    return json.dumps({k: v for k, v in row.items() if v is not ...})


def test_every_bad_row_reason_with_its_jsonl_line(wh: Warehouse, tmp_path: Path) -> None:
    lines = [
        good_line(0),  # 1
        good_line(1, prompt=...),  # 2: missing required field
        good_line(2, ts="the day before yesterday"),  # 3
        good_line(3, prompt_tokens="abc"),  # 4
        '{"call_id": "c9", "ts": ',  # 5: malformed JSON
        "",  # 6: blank lines are not rows
        good_line(0, prompt="again"),  # 7: duplicate in file
        good_line(7, latency_ms="fast"),  # 8
        good_line(8, status_code=99999999999),  # 9: does not fit an INTEGER
        good_line(9, prompt_tokens=12.5),  # 10: not an integer
        good_line(10, call_id=""),  # 11: an empty id is missing
        good_line(11, account_id=None),  # 12: null is missing
        "[1, 2, 3]",  # 13: JSON but not an object
        good_line(12),  # 14
    ]
    path = tmp_path / "calls.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report = ingest_file(wh, path, "calls")
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (13, 2, 11)
    assert quarantined(wh) == [
        (2, "missing required field: prompt"),
        (3, "unparseable timestamp: ts"),
        (4, "wrong type: prompt_tokens (expected an integer)"),
        (5, "malformed JSON line"),
        (7, "duplicate call_id in file"),
        (8, "wrong type: latency_ms (expected a number)"),
        (9, "wrong type: status_code (expected an integer)"),
        (10, "wrong type: prompt_tokens (expected an integer)"),
        (11, "missing required field: call_id"),
        (12, "missing required field: account_id"),
        (13, "malformed JSON line"),
    ]
    raw = wh.scalar("SELECT raw FROM quarantine WHERE line = 5")
    assert raw == '{"call_id": "c9", "ts":'  # as written, less trailing whitespace
    assert wh.scalar("SELECT DISTINCT source_path FROM quarantine") == str(path)


def test_jsonl_line_that_is_not_utf8_is_quarantined(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_bytes(
        (good_line(0) + "\n").encode()
        + b'{"call_id": "\xff\xfe"}\n'
        + (good_line(1) + "\n").encode()
    )
    report = ingest_file(wh, path, "calls")
    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert quarantined(wh) == [(2, "invalid UTF-8")]


def test_csv_bad_records_with_their_lines(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "calls.csv"
    path.write_text(
        "call_id,ts,account_id,prompt,prompt_tokens\n"  # line 1
        'c1,2026-10-01T00:00:00Z,a,"two\nlines",3\n'  # lines 2-3
        "c2,2026-10-01T00:00:00Z,a,p\n"  # line 4: a field short
        "c3,not a time,a,p,3\n"  # line 5
        "c4,2026-10-01T00:00:00Z,a,p,three\n"  # line 6
        ",2026-10-01T00:00:00Z,a,p,3\n"  # line 7: missing call_id
        "c5,2026-10-01T00:00:00Z,a,p,4,extra\n"  # line 8: a field too many
        'c6,2026-10-01T00:00:00Z,a,"",4\n'  # line 9: an empty prompt is a call with no text
        "c7,2026-10-01T00:00:00Z,a,ok,\n"  # line 10: fine, no token count
    )
    report = ingest_file(wh, path, "calls")
    assert (report.rows_read, report.rows_loaded, report.rows_quarantined) == (8, 3, 5)
    assert quarantined(wh) == [
        (4, "malformed CSV record (wrong number of fields)"),
        (5, "unparseable timestamp: ts"),
        (6, "wrong type: prompt_tokens (expected an integer)"),
        (7, "missing required field: call_id"),
        (8, "malformed CSV record (wrong number of fields)"),
    ]
    assert wh.scalar("SELECT prompt FROM calls WHERE call_id = 'c6'") == ""
    assert wh.scalar("SELECT raw FROM quarantine WHERE line = 4") == "c2,2026-10-01T00:00:00Z,a,p"
    assert wh.scalar("SELECT prompt FROM calls WHERE call_id = 'c1'") == "two\nlines"


def test_parquet_bad_rows_by_row_number(wh: Warehouse, tmp_path: Path) -> None:
    rows = call_rows(6)
    table = pa.table(
        {
            "call_id": [r["call_id"] for r in rows],
            "ts": [r["ts"].isoformat() for r in rows[:2]]
            + ["never"]
            + [r["ts"].isoformat() for r in rows[3:]],
            "account_id": [r["account_id"] for r in rows],
            "prompt": ["p", None, "p", "p", "p", "p"],
            "prompt_tokens": ["1", "2", "3", "abc", "5", "6"],
        }
    )
    pq.write_table(table, tmp_path / "calls.parquet")
    report = ingest_file(wh, tmp_path / "calls.parquet", "calls")
    assert (report.rows_loaded, report.rows_quarantined) == (3, 3)
    assert quarantined(wh) == [
        (2, "missing required field: prompt"),
        (3, "unparseable timestamp: ts"),
        (4, "wrong type: prompt_tokens (expected an integer)"),
    ]
    assert (
        json.loads(wh.scalar("SELECT raw FROM quarantine WHERE line = 4"))["prompt_tokens"] == "abc"
    )


# -- files refused whole --------------------------------------------------------------------


def refused(wh: Warehouse, path: Path, match: str, kind: str = "calls") -> None:
    with pytest.raises(UnreadableInput, match=match) as info:
        ingest_file(wh, path, kind)  # type: ignore[arg-type]
    assert str(path) in str(info.value)
    for table in ("calls", "accounts", "quarantine", "ingest_ledger"):
        assert wh.scalar(f"SELECT count(*) FROM {table}") == 0, table


def test_truncated_parquet_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    whole = write_calls(tmp_path / "whole.parquet", call_rows(500))
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    refused(wh, cut, "not a readable Parquet file")


def test_parquet_with_a_corrupt_middle_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    whole = write_calls(tmp_path / "whole.parquet", call_rows(2000))
    data = bytearray(whole.read_bytes())
    for i in range(100, len(data) // 2):
        data[i] = 0xAB
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(bytes(data))
    refused(wh, bad, "cannot be read as parquet|not a readable Parquet file")


@pytest.mark.parametrize("name", ["junk.parquet", "junk.jsonl", "junk.csv", "junk.jsonl.gz"])
def test_binary_junk_is_refused(wh: Warehouse, tmp_path: Path, name: str) -> None:
    junk = bytes(range(256)) * 40
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(junk))
    else:
        path.write_bytes(junk)
    refused(wh, path, "not a readable Parquet|not JSON Lines|CSV|UTF-8|missing required column")


def test_truncated_gzip_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    whole = write_calls(tmp_path / "calls.jsonl.gz", call_rows(3000))
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    refused(wh, cut, "cannot be read")


def test_jsonl_that_is_not_json_at_all_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "calls.jsonl"
    path.write_text("call_id,ts,account_id,prompt\nc1,2026-10-01,a,p\n")
    refused(wh, path, "not JSON Lines")


@pytest.mark.parametrize("name", ["calls.parquet", "calls.csv"])
def test_missing_required_columns_are_named(wh: Warehouse, tmp_path: Path, name: str) -> None:
    rows = [{"call_id": "c1", "account_id": "a", "when": "2026-10-01"}]
    refused(wh, write(tmp_path / name, rows), r"missing required column\(s\) ts, prompt")


def test_jsonl_rows_that_never_have_a_required_field_are_refused(
    wh: Warehouse, tmp_path: Path
) -> None:
    path = write(tmp_path / "acc.jsonl", [{"account_id": "a", "plan": "x"}] * 3)
    refused(wh, path, "no row has the required field.s. call_id, ts, prompt")


def test_a_column_that_can_never_fit_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    table = pa.table(
        {
            "call_id": ["c1"],
            "ts": pa.array([1760000000], pa.int64()),
            "account_id": ["a"],
            "prompt": ["p"],
        }
    )
    pq.write_table(table, tmp_path / "calls.parquet")
    refused(wh, tmp_path / "calls.parquet", "column ts has type BIGINT; expected a timestamp")


def test_unknown_extension_is_sniffed_or_refused(wh: Warehouse, tmp_path: Path) -> None:
    sniffed = tmp_path / "export.dat"
    sniffed.write_text(good_line(0) + "\n")
    assert ingest_file(wh, sniffed, "calls").rows_loaded == 1
    odd = tmp_path / "export.bin"
    odd.write_text("hello\n")
    with pytest.raises(UnreadableInput, match="cannot tell its format"):
        ingest_file(wh, odd, "calls")


def test_a_missing_file_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(UnreadableInput, match="no such file"):
        ingest_file(wh, tmp_path / "nope.parquet", "calls")
