"""A process killed with SIGKILL mid-import leaves the warehouse as before that file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ingest.formats import Format
from ingest.loader import ingest_file
from ingest.synthetic import write_synthetic_calls
from ingest.warehouse import Warehouse
from tests.ingest.factories import call_rows, write_calls

CHILD = textwrap.dedent(
    """
    import sys
    from ingest.loader import ingest_file
    from ingest.settings import IngestSettings
    from ingest.warehouse import Warehouse

    seen = 0
    def progress(n: int) -> None:
        global seen
        seen += n
        print(f"bytes {seen}", flush=True)

    wh = Warehouse.open(sys.argv[1])
    print("open", flush=True)
    ingest_file(wh, sys.argv[2], "calls", on_bytes=progress,
                settings=IngestSettings(block_bytes=1 << 16))
    print("done", flush=True)
    """
)


def kill_mid_import(db: Path, path: Path, after_bytes: int) -> list[str]:
    """Run an import in a child process and SIGKILL it once it has read ``after_bytes``."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    seen: list[str] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            seen.append(line.strip())
            if line.startswith("bytes") and int(line.split()[1]) >= after_bytes:
                os.kill(child.pid, signal.SIGKILL)
                break
    finally:
        child.wait(timeout=60)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL, seen
    assert "done" not in seen
    return seen


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "rows", "fraction"), [("jsonl", 60_000, 0.4), ("parquet", 400_000, 1.0)]
)
def test_sigkill_mid_import_then_exactly_once(
    tmp_path: Path, fmt: Format, rows: int, fraction: float
) -> None:
    db = tmp_path / "w.duckdb"
    with Warehouse.open(db) as wh:  # something loaded before the crash must survive it
        ingest_file(wh, write_calls(tmp_path / "before.parquet", call_rows(100, 10**8)), "calls")
    big = write_synthetic_calls(tmp_path / f"big.{fmt}", rows, fmt)
    # Parquet reports its bytes once staged, so the kill lands while rows are being written.
    kill_mid_import(db, big, int(big.stat().st_size * fraction))

    with Warehouse.open(db) as wh:
        assert wh.scalar("SELECT count(*) FROM calls") == 100
        assert wh.scalar("SELECT count(*) FROM ingest_ledger") == 1
        assert wh.scalar("SELECT count(*) FROM quarantine") == 0
        report = ingest_file(wh, big, "calls")
        assert (report.status, report.rows_loaded, report.rows_quarantined) == ("loaded", rows, 0)
        assert ingest_file(wh, big, "calls").status == "already_loaded"
        assert wh.fetchone("SELECT count(*), count(DISTINCT call_id) FROM calls") == (
            rows + 100,
            rows + 100,
        )
