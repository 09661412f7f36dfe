"""`ingest spool`: every closed gateway segment is loaded exactly once; journals are ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.cli import main
from ingest.loader import ingest_spool
from ingest.warehouse import Warehouse
from tests.ingest.factories import call_rows, write_calls


def make_spool(root: Path) -> Path:
    segments = root / "segments"
    segments.mkdir(parents=True)
    write_calls(segments / "seg-000001.parquet", call_rows(10))
    write_calls(segments / "seg-000002.parquet", call_rows(10, start=10))
    (segments / "seg-000003.parquet.tmp").write_bytes(b"half written")  # not yet renamed
    (root / "journal-000003.log").write_bytes(b"\x00\x00\x00\x10open journal")
    return segments


def test_spool_loads_each_segment_once(tmp_path: Path) -> None:
    segments = make_spool(tmp_path / "spool")
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        first = ingest_spool(wh, tmp_path / "spool")
        assert [(Path(r.path).name, r.status, r.rows_loaded) for r in first] == [
            ("seg-000001.parquet", "loaded", 10),
            ("seg-000002.parquet", "loaded", 10),
        ]
        write_calls(segments / "seg-000003.parquet", call_rows(5, start=20))
        second = ingest_spool(wh, segments)  # the segments folder itself works too
        assert [r.status for r in second] == ["already_loaded", "already_loaded", "loaded"]
        assert second[-1].rows_loaded == 5
        assert [r.status for r in ingest_spool(wh, segments)] == ["already_loaded"] * 3
        assert wh.scalar("SELECT count(*) FROM calls") == 25
        assert wh.scalar("SELECT count(*) FROM ingest_ledger") == 3


def test_a_segment_copied_under_another_name_is_not_loaded_twice(tmp_path: Path) -> None:
    segments = make_spool(tmp_path / "spool")
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        ingest_spool(wh, segments)
        copy = segments / "seg-000009.parquet"
        copy.write_bytes((segments / "seg-000001.parquet").read_bytes())
        report = ingest_spool(wh, segments)[-1]
        assert (Path(report.path).name, report.status) == ("seg-000009.parquet", "already_loaded")
        assert wh.scalar("SELECT count(*) FROM calls") == 20


def test_a_bad_segment_is_refused_and_the_others_load(tmp_path: Path) -> None:
    segments = make_spool(tmp_path / "spool")
    (segments / "seg-000000.parquet").write_bytes(b"PAR1 truncated")
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        reports = ingest_spool(wh, segments)
        assert [r.status for r in reports] == ["refused", "loaded", "loaded"]
        assert wh.scalar("SELECT count(*) FROM calls") == 20


def test_spool_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_spool(tmp_path / "spool")
    db = str(tmp_path / "w.duckdb")
    main(["ingest", "spool", str(tmp_path / "spool"), "--db", db])
    out = capsys.readouterr().out
    assert "seg-000001.parquet: read 10, loaded 10" in out
    assert "total: 2 file(s), read 20, loaded 20" in out
    main(["ingest", "spool", str(tmp_path / "spool"), "--db", db])
    assert "already loaded" in capsys.readouterr().out


def test_spool_command_on_a_missing_folder_exits_2(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ingest", "spool", str(tmp_path / "nope"), "--db", str(tmp_path / "w.duckdb")])
    assert exit_.value.code == 2
