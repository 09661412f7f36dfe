"""`distillguard ingest calls|accounts|status|quarantine` through the real CLI entry point."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from distillguard.cli import main
from tests.ingest.factories import account_rows, call_rows, write, write_accounts, write_calls


def run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    bad = call_rows(4, start=100)
    bad[2]["ts"] = "not a time"
    return {
        "good": write_calls(tmp_path / "good.parquet", call_rows(5)),
        "bad": write(tmp_path / "bad.jsonl", bad),
        "junk": _junk(tmp_path),
        "db": tmp_path / "w.duckdb",
    }


def _junk(tmp_path: Path) -> Path:
    path = tmp_path / "junk.parquet"
    path.write_bytes(b"this is not parquet\n" * 5)
    return path


def test_clean_import_exits_0_even_with_strict(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["ingest", "calls", str(files["good"]), "--db", str(files["db"]), "--strict"]) == 0
    out = capsys.readouterr().out
    assert f"{files['good']}: read 5, loaded 5, duplicates skipped 0, quarantined 0" in out


def test_quarantine_exits_1_only_with_strict(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(files["db"])
    assert run(["ingest", "calls", str(files["bad"]), "--db", db]) == 0
    assert "quarantined 1" in capsys.readouterr().out
    other = write(files["bad"].with_name("bad2.jsonl"), call_rows(2, 200, ts="soon"))
    assert run(["ingest", "calls", str(other), "--db", db, "--strict"]) == 1
    captured = capsys.readouterr()
    assert "quarantined 2" in captured.out
    assert "2 row(s) quarantined (--strict)" in captured.err


def test_a_refused_file_exits_2_and_is_named(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(files["db"])
    code = run(["ingest", "calls", str(files["junk"]), str(files["good"]), "--db", db])
    assert code == 2
    captured = capsys.readouterr()
    assert f"error: {files['junk']}: not a readable Parquet file" in captured.err
    assert "refused 1 file(s)" in captured.out
    assert "loaded 5" in captured.out  # the good file still loaded


def test_format_override(tmp_path: Path) -> None:
    path = write_calls(tmp_path / "calls.jsonl", call_rows(3))
    renamed = path.rename(tmp_path / "calls.txt")
    db = str(tmp_path / "w.duckdb")
    assert run(["ingest", "calls", str(renamed), "--db", db, "--format", "jsonl"]) == 0
    other_db = str(tmp_path / "other.duckdb")
    assert run(["ingest", "calls", str(renamed), "--db", other_db, "--format", "csv"]) == 2


def test_accounts_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "w.duckdb")
    first = write_accounts(tmp_path / "a1.csv", account_rows(3))
    assert run(["ingest", "accounts", str(first), "--db", db]) == 0
    second = write_accounts(tmp_path / "a2.csv", account_rows(3, plan="pro"))
    assert run(["ingest", "accounts", str(second), "--db", db]) == 0
    assert "loaded 3 (3 updates)" in capsys.readouterr().out


def test_status_and_quarantine_commands(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(files["db"])
    run(["ingest", "calls", str(files["good"]), str(files["bad"]), "--db", db])
    capsys.readouterr()
    assert run(["ingest", "status", "--db", db, "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["kinds"]["calls"]["files"] == 2
    assert status["stored"]["calls"] == 8
    assert status["quarantine_by_reason"] == {"unparseable timestamp: ts": 1}
    assert run(["ingest", "status", "--db", db]) == 0
    assert "1  unparseable timestamp: ts" in capsys.readouterr().out

    assert run(["ingest", "quarantine", "--db", db, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["source_path"], r["line"], r["reason"]) for r in rows] == [
        (str(files["bad"]), 3, "unparseable timestamp: ts")
    ]
    assert json.loads(rows[0]["raw"])["ts"] == "not a time"
    assert run(["ingest", "quarantine", "--db", db, "--format", "csv"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert parsed[0]["line"] == "3"
    assert run(["ingest", "quarantine", "--db", db]) == 0
    assert f"{files['bad']}:3  unparseable timestamp: ts" in capsys.readouterr().out
    assert run(["ingest", "quarantine", "--db", db, "--reason", "malformed JSON line"]) == 0
    assert capsys.readouterr().out.strip() == "no quarantined rows"


def test_status_without_a_warehouse_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["ingest", "status", "--db", str(tmp_path / "none.duckdb")]) == 1
    assert "no warehouse at" in capsys.readouterr().err
