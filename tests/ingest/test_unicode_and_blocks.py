"""Prompts are stored byte-faithfully, and lines cut at block boundaries keep their numbers."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ingest.blocks import CsvReader, jsonl_blocks
from ingest.loader import ingest_file
from ingest.settings import IngestSettings
from ingest.warehouse import Warehouse
from tests.ingest.factories import call_rows, write_calls

LIMIT = 64 << 20

NASTY = [
    "tab\there, newline\nthere, carriage\rreturn, bell\x07, escape\x1b[31m, del\x7f",
    'quotes " and \' and backslash \\ and a comma, and a {"json": "object"}',
    "emoji 🧠🔥, RTL שלום مرحبا, combining e\u0301, zero-width\u200b, BOM \ufeff",
    "line separator\u2028 paragraph\u2029 and a lone surrogate-free astral 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "x" * (1 << 20),  # 1 MiB
    "long unicode " + "ü字🙂" * 100_000,
]


@pytest.mark.parametrize("name", ["calls.parquet", "calls.jsonl", "calls.csv"])
def test_arbitrary_unicode_round_trips(wh: Warehouse, tmp_path: Path, name: str) -> None:
    prompts = list(NASTY)
    if not name.endswith(".csv"):
        prompts.append("NUL \x00 inside and at the end \x00")  # CSV cannot carry NUL
    rows = call_rows(len(prompts))
    for row, prompt in zip(rows, prompts, strict=True):
        row["prompt"] = prompt
        row["response"] = prompt[::-1]
    report = ingest_file(wh, write_calls(tmp_path / name, rows), "calls")
    assert report.rows_loaded == len(prompts), report
    stored = wh.fetchall("SELECT prompt, response FROM calls ORDER BY call_id")
    for (prompt, response), expected in zip(stored, prompts, strict=True):
        assert prompt.encode("utf-8") == expected.encode("utf-8")
        assert response == expected[::-1]


def test_jsonl_blocks_keep_line_numbers_across_boundaries() -> None:
    lines = [f'{{"n": {i}, "pad": "{"y" * (i % 13)}"}}' for i in range(200)]
    data = ("\n".join(lines) + "\n").encode()
    for block_bytes in (7, 64, 1000, len(data) + 1):
        got = [
            (line, raw.rstrip("\n"))
            for table in jsonl_blocks(io.BytesIO(data), block_bytes, max_record_bytes=LIMIT)
            for line, raw in zip(
                table.column("line").to_pylist(), table.column("raw").to_pylist(), strict=True
            )
        ]
        assert got == list(enumerate(lines, start=1)), block_bytes


def test_last_line_without_newline_is_read() -> None:
    tables = list(jsonl_blocks(io.BytesIO(b'{"a": 1}\n{"a": 2}'), 4, max_record_bytes=LIMIT))
    assert [t.column("line").to_pylist() for t in tables][-1] == [2]


def test_csv_records_spanning_blocks_keep_their_first_line() -> None:
    body = "".join(f'r{i},"multi\nline {i}, with comma",{i}\n' for i in range(100))
    data = ("id,text,n\n" + body).encode()
    for block_bytes in (5, 50, 333, len(data) + 1):
        reader = CsvReader(io.BytesIO(data), block_bytes, "x.csv", max_record_bytes=LIMIT)
        lines, ids = [], []
        for block in reader.blocks():
            lines += block.rows.column("__line").to_pylist()
            ids += block.rows.column("id").to_pylist()
            assert block.bad.num_rows == 0
        assert ids == [f"r{i}" for i in range(100)], block_bytes
        assert lines == [2 + 2 * i for i in range(100)], block_bytes


def test_big_jsonl_across_many_blocks(wh: Warehouse, tmp_path: Path) -> None:
    rows = call_rows(3000)
    rows[2999]["prompt"] = None
    path = write_calls(tmp_path / "calls.jsonl", rows)
    settings = IngestSettings(block_bytes=1 << 16)
    assert path.stat().st_size > 5 * settings.block_bytes
    report = ingest_file(wh, path, "calls", settings=settings)
    assert (report.rows_loaded, report.rows_quarantined) == (2999, 1)
    assert wh.scalar("SELECT line FROM quarantine") == 3000


@pytest.mark.parametrize("name", ["calls.csv", "calls.jsonl"])
def test_a_byte_order_mark_at_the_start_is_ignored(
    wh: Warehouse, tmp_path: Path, name: str
) -> None:
    path = write_calls(tmp_path / name, call_rows(3))
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    report = ingest_file(wh, path, "calls")
    assert (report.rows_loaded, report.rows_quarantined) == (3, 0)
    assert wh.scalar("SELECT min(call_id) FROM calls") == "c0000000"
