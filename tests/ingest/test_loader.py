"""Loading real files into a real DuckDB warehouse: formats, exactly-once, accounts upsert."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.exceptions import IngestError
from ingest.loader import IngestReport, ingest_file, ingest_files
from ingest.settings import IngestSettings
from ingest.warehouse import Warehouse
from tests.ingest.factories import T0, account_rows, call_rows, write, write_accounts, write_calls

FORMATS = ["calls.parquet", "calls.jsonl", "calls.csv", "calls.jsonl.gz", "calls.csv.gz"]


def assert_balanced(report: IngestReport) -> None:
    assert report.rows_read == (
        report.rows_loaded + report.rows_duplicate + report.rows_quarantined
    ), report


@pytest.mark.parametrize("name", FORMATS)
def test_each_format_round_trips(wh: Warehouse, tmp_path: Path, name: str) -> None:
    rows = call_rows(40)
    report = ingest_file(wh, write_calls(tmp_path / name, rows), "calls")
    assert (report.status, report.rows_read, report.rows_loaded) == ("loaded", 40, 40)
    assert report.rows_quarantined == 0
    stored = wh.records("SELECT * EXCLUDE (extra, batch_id) FROM calls ORDER BY call_id")
    assert stored == rows
    assert wh.scalar("SELECT count(*) FROM calls WHERE batch_id = $b", {"b": report.batch_id}) == 40


@pytest.mark.parametrize("name", ["calls.parquet", "calls.jsonl", "calls.csv"])
def test_optional_columns_may_be_absent(wh: Warehouse, tmp_path: Path, name: str) -> None:
    rows = [
        {"call_id": r["call_id"], "ts": r["ts"], "account_id": r["account_id"], "prompt": "hi"}
        for r in call_rows(5)
    ]
    report = ingest_file(wh, write(tmp_path / name, rows), "calls")
    assert report.rows_loaded == 5
    assert wh.scalar("SELECT count(*) FROM calls WHERE model IS NULL AND latency_ms IS NULL") == 5


@pytest.mark.parametrize("name", ["calls.parquet", "calls.jsonl", "calls.csv"])
def test_extra_columns_are_kept(wh: Warehouse, tmp_path: Path, name: str) -> None:
    rows = [{**r, "tenant": f"t{i}", "region": "eu"} for i, r in enumerate(call_rows(3))]
    ingest_file(wh, write(tmp_path / name, rows), "calls")
    extras = [json.loads(e) for (e,) in wh.fetchall("SELECT extra FROM calls ORDER BY call_id")]
    assert extras == [{"tenant": f"t{i}", "region": "eu"} for i in range(3)]


def test_reimporting_a_file_is_a_no_op(wh: Warehouse, tmp_path: Path) -> None:
    path = write_calls(tmp_path / "calls.parquet", call_rows(30))
    first = ingest_file(wh, path, "calls")
    copy = tmp_path / "renamed.parquet"
    copy.write_bytes(path.read_bytes())
    again, renamed = ingest_file(wh, path, "calls"), ingest_file(wh, copy, "calls")
    for report in (again, renamed):
        assert report.status == "already_loaded"
        assert report.batch_id == first.batch_id
        assert report.rows_loaded == 0
    assert wh.scalar("SELECT count(*) FROM calls") == 30
    assert wh.scalar("SELECT count(*) FROM ingest_ledger") == 1


def test_overlapping_files_are_deduplicated(wh: Warehouse, tmp_path: Path) -> None:
    first = ingest_file(wh, write_calls(tmp_path / "a.jsonl", call_rows(100)), "calls")
    second = ingest_file(wh, write_calls(tmp_path / "b.parquet", call_rows(100, start=60)), "calls")
    assert (first.rows_loaded, second.rows_loaded, second.rows_duplicate) == (100, 60, 40)
    assert_balanced(second)
    assert wh.scalar("SELECT count(*), count(DISTINCT call_id) FROM calls") == 160
    assert wh.fetchone("SELECT count(*), count(DISTINCT call_id) FROM calls") == (160, 160)
    # The overlap kept the first file's rows, not the second's.
    assert wh.scalar("SELECT batch_id FROM calls WHERE call_id = 'c0000070'") == first.batch_id


def test_duplicate_call_id_in_one_file_keeps_the_first(wh: Warehouse, tmp_path: Path) -> None:
    rows = call_rows(5)
    rows.insert(3, {**rows[1], "prompt": "second copy"})
    report = ingest_file(wh, write_calls(tmp_path / "calls.jsonl", rows), "calls")
    assert (report.rows_loaded, report.rows_quarantined) == (5, 1)
    assert wh.scalar("SELECT prompt FROM calls WHERE call_id = 'c0000001'") == rows[1]["prompt"]
    line, reason, raw = wh.fetchone("SELECT line, reason, raw FROM quarantine")  # type: ignore[misc]
    assert (line, reason) == (4, "duplicate call_id in file")
    assert json.loads(raw)["prompt"] == "second copy"


def test_files_are_reported_one_by_one(wh: Warehouse, tmp_path: Path) -> None:
    good = write_calls(tmp_path / "good.jsonl", call_rows(3))
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"\x00\x01 not parquet at all " * 10)
    reports = ingest_files(wh, [junk, good], "calls")
    assert [r.status for r in reports] == ["refused", "loaded"]
    assert reports[0].error is not None and str(junk) in reports[0].error
    assert wh.scalar("SELECT count(*) FROM calls") == 3


def test_timestamps_naive_offset_and_parquet_types(wh: Warehouse, tmp_path: Path) -> None:
    base = {"account_id": "a", "prompt": "p"}
    rows = [
        {**base, "call_id": "z", "ts": "2026-10-01T12:00:00Z"},
        {**base, "call_id": "naive", "ts": "2026-10-01T12:00:00"},
        {**base, "call_id": "offset", "ts": "2026-10-01T14:00:00+02:00"},
        {**base, "call_id": "space", "ts": "2026-10-01 12:00:00.000000+00"},
    ]
    ingest_file(wh, write(tmp_path / "ts.jsonl", rows), "calls")
    naive = pa.table(
        {
            "call_id": ["pq"],
            "ts": pa.array([T0.replace(tzinfo=None)], pa.timestamp("ns")),
            "account_id": ["a"],
            "prompt": ["p"],
        }
    )
    pq.write_table(naive, tmp_path / "naive.parquet")
    ingest_file(wh, tmp_path / "naive.parquet", "calls")
    assert {ts for (ts,) in wh.fetchall("SELECT ts FROM calls")} == {T0}


def test_accounts_are_upserted_by_account_id(wh: Warehouse, tmp_path: Path) -> None:
    first = ingest_file(wh, write_accounts(tmp_path / "a1.parquet", account_rows(4)), "accounts")
    assert (first.rows_loaded, first.rows_updated) == (4, 0)
    newer = account_rows(4)
    newer[1]["plan"] = "pro"  # changed
    newer[2]["extra_flag"] = "vip"  # changed: a new extra column
    newer.append(account_rows(1, start=9)[0])  # new
    second = ingest_file(wh, write(tmp_path / "a2.jsonl", newer), "accounts")
    assert (second.rows_read, second.rows_loaded, second.rows_updated) == (5, 3, 2)
    assert second.rows_duplicate == 2  # acct0 and acct3 are unchanged
    assert_balanced(second)
    assert wh.scalar("SELECT count(*) FROM accounts") == 5
    assert wh.scalar("SELECT plan FROM accounts WHERE account_id = 'acct1'") == "pro"
    assert wh.scalar("SELECT batch_id FROM accounts WHERE account_id = 'acct1'") == second.batch_id
    assert wh.scalar("SELECT batch_id FROM accounts WHERE account_id = 'acct0'") == first.batch_id
    assert json.loads(wh.scalar("SELECT extra FROM accounts WHERE account_id = 'acct2'")) == {
        "extra_flag": "vip"
    }


def test_account_duplicated_in_one_export_keeps_the_first(wh: Warehouse, tmp_path: Path) -> None:
    rows = account_rows(2)
    rows.append({**rows[0], "plan": "team"})
    report = ingest_file(wh, write(tmp_path / "acc.csv", rows), "accounts")
    assert (report.rows_loaded, report.rows_quarantined) == (2, 1)
    assert wh.fetchone("SELECT line, reason FROM quarantine") == (4, "duplicate account_id in file")
    assert wh.scalar("SELECT plan FROM accounts WHERE account_id = 'acct0'") == "free"


def test_empty_files_load_nothing(wh: Warehouse, tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "header.csv").write_text("call_id,ts,account_id,prompt\n")
    for name in ("empty.jsonl", "header.csv"):
        report = ingest_file(wh, tmp_path / name, "calls")
        assert (report.status, report.rows_read, report.rows_loaded) == ("loaded", 0, 0)


def test_memory_limit_is_restored_after_an_import(wh: Warehouse, tmp_path: Path) -> None:
    wh.execute("SET memory_limit = '1.5 GiB'")
    capped = IngestSettings(memory_limit="300MB")
    ingest_file(wh, write_calls(tmp_path / "c.parquet", call_rows(3)), "calls", settings=capped)
    assert wh.scalar("SELECT current_setting('memory_limit')") == "1.5 GiB"


def test_a_memory_limit_that_is_not_a_size_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    path = write_calls(tmp_path / "c.parquet", call_rows(3))
    with pytest.raises(IngestError, match="INGEST_MEMORY_LIMIT='lots'"):
        ingest_file(wh, path, "calls", settings=IngestSettings(memory_limit="lots"))
    assert wh.scalar("SELECT count(*) FROM calls") == 0


@pytest.mark.parametrize("name", ["calls.jsonl", "calls.csv"])
def test_text_formats_are_staged_in_the_scratch_folder_and_cleaned(
    wh: Warehouse, tmp_path: Path, name: str
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    settings = IngestSettings(temp_dir=scratch, block_bytes=1 << 16)
    path = write_calls(tmp_path / name, call_rows(2000))
    assert ingest_file(wh, path, "calls", settings=settings).rows_loaded == 2000
    assert list(scratch.iterdir()) == []


def test_parquet_strings_written_as_binary_are_read_as_text(wh: Warehouse, tmp_path: Path) -> None:
    table = pa.table(
        {
            "call_id": pa.array([b"c1", b"c2"], pa.binary()),
            "ts": pa.array([T0, T0], pa.timestamp("us", tz="UTC")),
            "account_id": pa.array([b"a", b"b"], pa.binary()),
            "prompt": pa.array(["grüße".encode(), b"p"], pa.binary()),
        }
    )
    pq.write_table(table, tmp_path / "spark.parquet")
    assert ingest_file(wh, tmp_path / "spark.parquet", "calls").rows_loaded == 2
    assert wh.scalar("SELECT prompt FROM calls WHERE call_id = 'c1'") == "grüße"
