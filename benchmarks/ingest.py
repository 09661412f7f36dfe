"""Ingest throughput and memory: synthetic contract rows from Parquet and JSON Lines.

    .venv/bin/python benchmarks/ingest.py            # 5 million rows (a few minutes)
    .venv/bin/python benchmarks/ingest.py --rows 500000

Each import runs in a child process on a fresh warehouse; its wall time covers hashing, validation,
deduplication and the committed write, its CPU time (all threads) the same span, and its peak RSS
comes from ``os.wait4``. The baseline is a bare ``INSERT INTO calls SELECT ... FROM
read_parquet(...)`` (no validation, no ledger) in the same run, so the ratio is what the importer
costs over DuckDB's own load. Memory is shown bounded by importing a fifth of the rows as well,
every case under the same DuckDB memory limit (``--memory-limit``, default the importer's own
``INGEST_MEMORY_LIMIT`` default, 3GB; the baseline gets the same limit): the peak should
not grow with the rows. On a shared machine, CPU time is steadier than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# This script is itself named ingest.py: put the project first so `ingest` is the package.
sys.path.insert(0, str(ROOT))

from ingest.settings import IngestSettings  # noqa: E402
from ingest.synthetic import write_synthetic_calls  # noqa: E402

IMPORT = """
import json, sys, time
from ingest.loader import ingest_file
from ingest.warehouse import Warehouse
with Warehouse.open(sys.argv[1]) as wh:
    start, cpu = time.perf_counter(), time.process_time()
    report = ingest_file(wh, sys.argv[2], "calls")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": report.rows_loaded}))
"""

BASELINE = """
import json, sys, time
from ingest.contract import CALL_COLUMN_NAMES
from ingest.warehouse import Warehouse
names = ", ".join(CALL_COLUMN_NAMES)
with Warehouse.open(sys.argv[1]) as wh:
    wh.execute(f"SET memory_limit = '{sys.argv[3]}'")
    start, cpu = time.perf_counter(), time.process_time()
    with wh.transaction():
        rows = wh.fetchall(
            f"INSERT INTO calls SELECT {names}, NULL, 1 FROM read_parquet($p)", {"p": sys.argv[2]}
        )[0][0]
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": rows}))
"""


def run_child(script: str, db: Path, path: Path, memory_limit: str) -> dict[str, Any]:
    """Run ``script`` in a child process; its JSON result plus its peak RSS in MiB."""
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(db), str(path), memory_limit],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "INGEST_MEMORY_LIMIT": memory_limit},
    )
    assert child.stdout is not None
    out = child.stdout.read()
    child.stdout.close()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"child failed with {child.returncode}")
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    result["peak_rss_mib"] = usage.ru_maxrss / 1024  # Linux reports KiB
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="Write the files under here.")
    parser.add_argument(
        "--memory-limit",
        default=IngestSettings.model_fields["memory_limit"].default,
        help="INGEST_MEMORY_LIMIT for every case (default: the importer's default).",
    )
    args = parser.parse_args()
    rows, small = args.rows, max(args.rows // 5, 1)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        files = {
            fmt: write_synthetic_calls(work / f"calls.{fmt}", rows, fmt)
            for fmt in ("parquet", "jsonl")
        }
        small_parquet = write_synthetic_calls(work / "small.parquet", small, "parquet")
        small_jsonl = write_synthetic_calls(work / "small.jsonl", small, "jsonl")
        print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s:")
        for fmt, path in files.items():
            print(f"  {fmt:8} {path.stat().st_size / 2**20:8.0f} MiB")
        db = work / "bench.duckdb"
        cases = [
            ("baseline: bare INSERT from Parquet", BASELINE, files["parquet"], rows),
            ("ingest Parquet", IMPORT, files["parquet"], rows),
            (f"ingest Parquet, {small:,} rows", IMPORT, small_parquet, small),
            ("ingest JSON Lines", IMPORT, files["jsonl"], rows),
            (f"ingest JSON Lines, {small:,} rows", IMPORT, small_jsonl, small),
        ]
        results: dict[str, dict[str, Any]] = {}
        print(
            f"\n{'case':40} {'rows':>11} {'seconds':>8} {'rows/s':>11} {'CPU s':>7} "
            f"{'peak RSS':>10}"
        )
        for name, script, path, expected in cases:
            result = run_child(script, db, path, args.memory_limit)
            assert result["rows"] == expected, (name, result)
            results[name] = result
            rate = result["rows"] / result["seconds"]
            print(
                f"{name:40} {result['rows']:>11,} {result['seconds']:>8.2f} {rate:>11,.0f} "
                f"{result['cpu_seconds']:>7.1f} {result['peak_rss_mib']:>7.0f} MiB"
            )
        base = results["baseline: bare INSERT from Parquet"]
        parquet = results["ingest Parquet"]
        print(
            f"\ningest Parquet takes {parquet['seconds'] / base['seconds']:.2f}x the bare INSERT's "
            f"wall time and {parquet['cpu_seconds'] / base['cpu_seconds']:.2f}x its CPU time "
            "(CPU time is the steadier figure on a shared machine)"
        )
        for fmt, big, little in (
            ("Parquet", "ingest Parquet", f"ingest Parquet, {small:,} rows"),
            ("JSON Lines", "ingest JSON Lines", f"ingest JSON Lines, {small:,} rows"),
        ):
            ratio = results[big]["peak_rss_mib"] / results[little]["peak_rss_mib"]
            print(f"{fmt}: peak RSS at {rows:,} rows is {ratio:.2f}x that at {small:,} rows")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"(machine: {os.cpu_count()} CPUs, load average {load}; "
            f"memory limit {args.memory_limit})"
        )


if __name__ == "__main__":
    main()
