"""Import progress counts bytes of the files as stored, so it never passes its total."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.loader import ingest_file
from ingest.settings import IngestSettings
from ingest.warehouse import Warehouse
from tests.ingest.factories import call_rows, write_calls


@pytest.mark.parametrize("name", ["calls.jsonl.gz", "calls.csv.gz", "calls.jsonl", "calls.csv"])
def test_progress_counts_up_to_the_size_on_disk(wh: Warehouse, tmp_path: Path, name: str) -> None:
    rows = call_rows(400)
    for row in rows:
        row["prompt"] = "Solve step by step. " * 100  # compresses about 50 to 1
    path = write_calls(tmp_path / name, rows)
    total = path.stat().st_size  # what `distillguard ingest` sets as the bar's total
    seen: list[int] = []
    report = ingest_file(
        wh, path, "calls", on_bytes=seen.append, settings=IngestSettings(block_bytes=1 << 16)
    )
    assert report.rows_loaded == 400
    assert len(seen) > 1 and min(seen) > 0
    running = 0
    for step in seen:
        running += step
        assert running <= total, f"progress {running} passed the total {total}"
    assert running == total
