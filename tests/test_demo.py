"""``distillguard demo`` end to end on a small population (the console stage is skipped)."""

from __future__ import annotations

from pathlib import Path

import pytest

from distillguard.cli import main
from ingest.warehouse import Warehouse


@pytest.mark.slow
def test_demo_runs_the_whole_pipeline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    main(["demo", "--out", str(out), "--scale", "0.2", "--seed", "3", "--no-serve"])
    printed = capsys.readouterr().out
    assert "one per call sent: yes" in printed
    assert "full system" in printed and "PRADA baseline" in printed
    with Warehouse.open(out / "distillguard.duckdb", read_only=True) as wh:
        replayed = wh.scalar("SELECT count(*) FROM calls WHERE client_ip = '127.0.0.1'")
        flagged_rings = wh.scalar(
            "SELECT count(*) FROM rings WHERE flagged AND run_id = (SELECT max(run_id) FROM rings)"
        )
    assert replayed > 0
    assert flagged_rings >= 1
    assert (out / "spool" / "segments").is_dir()
