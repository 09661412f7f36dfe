"""A file is read by its own path, whatever characters the path holds."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import sql
from ingest.loader import ingest_file
from ingest.settings import IngestSettings
from ingest.warehouse import Warehouse
from tests.ingest.factories import call_rows, write_calls

NASTY = "it's'); DROP TABLE calls; --"


def test_file_pattern_makes_each_wildcard_match_only_itself() -> None:
    assert sql.file_pattern("/d/a*b?c[1]d].parquet") == "/d/a[*]b[?]c[[]1]d].parquet"
    assert sql.file_pattern(f"/d/{NASTY}.csv") == f"/d/{NASTY}.csv"


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv", ".jsonl.gz"])
def test_a_path_with_quotes_and_sql_is_just_a_path(
    wh: Warehouse, tmp_path: Path, suffix: str
) -> None:
    ingest_file(wh, write_calls(tmp_path / f"first{suffix}", call_rows(2)), "calls")
    folder = tmp_path / NASTY
    folder.mkdir()
    path = write_calls(folder / f"{NASTY}{suffix}", call_rows(3, start=10))
    report = ingest_file(wh, path, "calls")
    assert (report.status, report.rows_loaded) == ("loaded", 3)
    assert wh.scalar("SELECT count(*) FROM calls") == 5
    assert wh.scalar(
        "SELECT source_path FROM ingest_ledger WHERE batch_id = $b", {"b": report.batch_id}
    ) == str(path.resolve())


@pytest.mark.parametrize(
    ("name", "neighbour"),
    [
        ("a*b.parquet", "aZb.parquet"),
        ("c?d.parquet", "cXd.parquet"),
        ("e[1].parquet", "e1.parquet"),
    ],
)
def test_wildcards_in_a_name_read_only_that_file(
    wh: Warehouse, tmp_path: Path, name: str, neighbour: str
) -> None:
    write_calls(tmp_path / neighbour, call_rows(5, start=100))
    report = ingest_file(wh, write_calls(tmp_path / name, call_rows(3)), "calls")
    assert (report.rows_read, report.rows_loaded) == (3, 3)
    assert wh.scalar("SELECT max(call_id) FROM calls") == "c0000002"


@pytest.mark.parametrize("name", ["calls.jsonl", "calls.csv"])
def test_a_temp_dir_with_wildcards_and_quotes(wh: Warehouse, tmp_path: Path, name: str) -> None:
    scratch = tmp_path / "scratch [1] *'?"
    scratch.mkdir()
    settings = IngestSettings(temp_dir=scratch)
    report = ingest_file(wh, write_calls(tmp_path / name, call_rows(3)), "calls", settings=settings)
    assert (report.rows_read, report.rows_loaded) == (3, 3)
