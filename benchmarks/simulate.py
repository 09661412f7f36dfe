"""Simulator speed: a default run (built-in prompts, and the public sets when present).

Prints seconds per run (median of 3), calls per second, and the ratio to the time to write the
same tables to Parquet (the floor any generator pays for its output).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/ingest.py sits beside this script and would shadow the `ingest` package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.simulator import SimulationConfig, simulate, write

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "prompts"


def measure(corpus: Path | None) -> None:
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        result = simulate(SimulationConfig(), corpus)
        runs.append(time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        write(result, Path(tmp))
        written = time.perf_counter() - started
    seconds = statistics.median(runs)
    label = "public sets" if corpus else "built-in"
    print(
        f"{label:12} {result.accounts.num_rows:6,} accounts {result.calls.num_rows:8,} calls  "
        f"simulate {seconds:5.2f} s ({result.calls.num_rows / seconds:9,.0f} calls/s)  "
        f"write {written:4.2f} s  simulate/write {seconds / written:4.1f}x"
    )


if __name__ == "__main__":
    measure(None)
    if CORPUS.is_dir():
        measure(CORPUS)
