"""One JSON line or CSV record is bounded (INGEST_MAX_RECORD_BYTES), and finding it is linear."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from ingest.blocks import CsvReader, jsonl_blocks
from ingest.exceptions import UnreadableInput
from ingest.loader import ingest_file, ingest_files
from ingest.settings import IngestSettings
from ingest.warehouse import Warehouse
from tests.ingest.factories import call_rows, write_calls

SETTINGS = IngestSettings(block_bytes=1 << 16, max_record_bytes=4 << 20)


def _refused(wh: Warehouse, path: Path) -> str:
    """The error the file is refused with; asserts that nothing of it was loaded."""
    with pytest.raises(UnreadableInput) as raised:
        ingest_file(wh, path, "calls", settings=SETTINGS)
    for table in ("calls", "quarantine", "ingest_ledger"):
        assert wh.scalar(f"SELECT count(*) FROM {table}") == 0, table
    return str(raised.value)


def test_the_limit_is_a_setting_of_64_mib(monkeypatch: pytest.MonkeyPatch) -> None:
    assert IngestSettings().max_record_bytes == 64 << 20
    monkeypatch.setenv("INGEST_MAX_RECORD_BYTES", str(1 << 20))
    assert IngestSettings().max_record_bytes == 1 << 20


def test_an_unterminated_huge_jsonl_line_is_refused_quickly(wh: Warehouse, tmp_path: Path) -> None:
    path = write_calls(tmp_path / "calls.jsonl", call_rows(2))
    good = path.read_bytes()
    with path.open("ab") as f:  # a third line that never ends: 64 MiB without a line break
        f.write(b'{"call_id": "c9", "prompt": "')
        for _ in range(64):
            f.write(b"x" * (1 << 20))
    error = _refused(wh, path)  # it stops after reading about 4 MiB of the 64
    assert error == (
        f"{path}: line 3 (from byte offset {len(good)}) runs past 4,194,304 bytes "
        "(INGEST_MAX_RECORD_BYTES); is the file truncated or without line breaks?"
    )
    assert ingest_files(wh, [path], "calls")[0].status == "refused"  # as other refused files


def test_a_csv_quote_left_open_is_refused_with_its_line(wh: Warehouse, tmp_path: Path) -> None:
    path = write_calls(tmp_path / "calls.csv", call_rows(2))
    good = path.read_bytes()
    path.write_bytes(good + b'c9,"never closed\n' + b"more text,\n" * 600_000)
    assert _refused(wh, path) == (
        f"{path}: the record on line 4 (from byte offset {len(good)}) runs past 4,194,304 "
        "bytes (INGEST_MAX_RECORD_BYTES); is a quote left open?"
    )


@pytest.mark.parametrize("name", ["calls.jsonl", "calls.csv", "calls.jsonl.gz"])
def test_a_1_mib_prompt_under_the_limit_loads_faithfully(
    wh: Warehouse, tmp_path: Path, name: str
) -> None:
    rows = call_rows(3)
    rows[1]["prompt"] = "é" * (1 << 17) + '\n, "quoted" ' + "z" * (1 << 20)  # over 1 MiB
    path = write_calls(tmp_path / name, rows)
    report = ingest_file(wh, path, "calls", settings=SETTINGS)
    assert (report.rows_loaded, report.rows_quarantined) == (3, 0)
    stored = wh.scalar("SELECT prompt FROM calls WHERE call_id = $id", {"id": rows[1]["call_id"]})
    assert stored == rows[1]["prompt"]


def test_a_line_longer_than_the_limit_is_refused_even_inside_one_block() -> None:
    lines = [json.dumps({"n": 1}), json.dumps({"n": "y" * 5000}), json.dumps({"n": 3})]
    data = ("\n".join(lines) + "\n").encode()
    with pytest.raises(Exception, match=r"^line 2 \(from byte offset 9\) runs past 4,096 bytes"):
        list(jsonl_blocks(io.BytesIO(data), 1 << 16, max_record_bytes=4096))


def test_a_long_unterminated_line_spanning_many_blocks_is_kept_whole() -> None:
    """48 MiB in 64 KiB blocks (each byte is searched once; this took ~7 s when every block
    rescanned the bytes carried from the blocks before it: no timing is asserted here)."""
    data = b'{"prompt": "' + b"x" * (48 << 20)
    tables = list(jsonl_blocks(io.BytesIO(data), 1 << 16, max_record_bytes=1 << 30))
    assert tables[-1].column("line").to_pylist() == [1]
    assert len(tables[-1].column("raw")[0].as_py()) == len(data)


def test_a_long_quoted_csv_field_spanning_many_blocks_is_kept_whole() -> None:
    data = b'a,b\n1,"' + b"x\n" * (16 << 20) + b'"\n'
    blocks = list(CsvReader(io.BytesIO(data), 1 << 16, "x.csv", max_record_bytes=1 << 30).blocks())
    assert sum(b.rows.num_rows for b in blocks) == 1
    assert blocks[-1].rows.column("b")[0].as_py() == "x\n" * (16 << 20)
