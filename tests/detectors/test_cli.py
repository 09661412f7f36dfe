"""The detect, flags and evaluate commands as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distillguard.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = 0
    try:
        main(argv)
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_detect_then_flags_in_every_format(
    fresh_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(fresh_db)
    code, out, err = _run(
        ["detect", "--db", db, "--embed-budget", "0", "--device", "cpu", "--format", "json"],
        capsys,
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["mode"] == "full" and summary["n_flagged"] > 0
    assert summary["device"] == "cpu" and summary["precision"] == "float32"
    from ingest.warehouse import Warehouse

    with Warehouse.open(fresh_db, read_only=True) as wh:
        assert wh.fetchone("SELECT device, precision FROM detection_runs") == ("cpu", "float32")

    code, out, _ = _run(["flags", "--db", db, "--format", "json"], capsys)
    data = json.loads(out)
    assert len(data["accounts"]) == summary["n_flagged"]
    assert all(a["flagged"] and a["ring_id"] and a["reasons"] for a in data["accounts"])
    assert any(r["flagged"] for r in data["rings"])

    code, out, _ = _run(["flags", "--db", db, "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == summary["n_flagged"]
    assert {"account_id", "ring_id", "score", "flagged", "reasons"} <= set(rows[0])

    target = tmp_path / "flags.parquet"
    code, _, _ = _run(["flags", "--db", db, "--format", "parquet", "--out", str(target)], capsys)
    assert code == 0 and pq.read_table(target).num_rows == summary["n_flagged"]

    code, out, _ = _run(["flags", "--db", db], capsys)
    assert code == 0 and "flagged accounts" in out and "ring-" in out


def test_evaluate_reports_system_and_baseline_side_by_side(
    fresh_db: Path, small_sim: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(fresh_db)
    assert _run(["detect", "--db", db, "--embed-budget", "0"], capsys)[0] == 0
    labels = str(small_sim / "labels.parquet")
    code, out, err = _run(
        ["evaluate", "--db", db, "--labels", labels, "--replay", "2", "--format", "json"], capsys
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["system"]["precision"] >= 0.99 and result["system"]["recall"] >= 0.95
    assert result["baseline"]["f1"] < result["system"]["f1"]
    timing = result["time_to_flag"]["rings"]
    assert timing and all(r["system"] is not None for r in timing)
    assert all(0 < r["system"]["calls_before"] <= r["total_calls"] for r in timing)
    assert all(0 < r["system"]["members_flagged"] <= 1 for r in timing)

    code, out, _ = _run(["evaluate", "--db", db, "--labels", labels, "--replay", "0"], capsys)
    assert code == 0
    assert "PRADA baseline" in out and "false positives by role" in out


def test_user_errors_are_messages_not_tracebacks(
    fresh_db: Path, small_sim: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.duckdb")
    code, _, err = _run(["detect", "--db", missing], capsys)
    assert code == 1 and "no warehouse at" in err

    db = str(fresh_db)
    code, _, err = _run(["flags", "--db", db], capsys)
    assert code == 1 and "no detection run" in err

    code, _, err = _run(["detect", "--db", db, "--since", "last tuesday"], capsys)
    assert code == 1 and "not an ISO 8601 time" in err

    code, _, err = _run(["detect", "--db", db, "--since", "2026-11-10"], capsys)
    assert code == 1 and "earlier detection run" in err

    assert _run(["detect", "--db", db, "--embed-budget", "0"], capsys)[0] == 0
    code, _, err = _run(["flags", "--db", db, "--format", "parquet"], capsys)
    assert code == 1 and "needs --out" in err

    junk = tmp_path / "labels.parquet"
    junk.write_bytes(b"not parquet at all")
    code, _, err = _run(["evaluate", "--db", db, "--labels", str(junk), "--replay", "0"], capsys)
    assert code == 1 and "not a readable Parquet file" in err

    no_fraud = tmp_path / "accounts-only.parquet"
    shutil.copyfile(small_sim / "accounts.parquet", no_fraud)
    code, _, err = _run(
        ["evaluate", "--db", db, "--labels", str(no_fraud), "--replay", "0"], capsys
    )
    assert code == 1 and "lacks the column(s) is_fraud" in err


def test_bad_policy_file_names_file_line_and_field(
    fresh_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from policies.loader import shipped_policy_path

    text = shipped_policy_path("detection.yaml").read_text(encoding="utf-8")
    bad = tmp_path / "detection.yaml"
    bad.write_text(text.replace("  min_size: 3\n", "  min_size: 3\n  min_sise: 4\n"), "utf-8")
    line = bad.read_text(encoding="utf-8").splitlines().index("  min_sise: 4") + 1
    code, _, err = _run(["detect", "--db", str(fresh_db), "--policy", str(bad)], capsys)
    assert code == 1
    assert f"{bad}:{line}: field 'rings.min_sise': extra inputs are not permitted" in err


def test_detect_refuses_a_precision_the_device_lacks(
    fresh_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from ingest.warehouse import Warehouse

    argv = ["detect", "--db", str(fresh_db), "--device", "cpu", "--precision", "float16"]
    code, out, err = _run(argv, capsys)
    assert code != 0
    assert "float16 embedding is for CUDA; on the CPU use bfloat16 or float32" in out + err
    with Warehouse.open(fresh_db, read_only=True) as wh:
        assert wh.scalar("SELECT count(*) FROM detection_runs") == 0
