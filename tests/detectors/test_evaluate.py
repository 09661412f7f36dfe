"""Evaluation arithmetic and labels handling, on a detected warehouse."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detectors.evaluate import Scores, evaluate, read_labels
from detectors.exceptions import BadLabels, NoDetectionRun
from ingest.warehouse import Warehouse


def test_scores_arithmetic() -> None:
    s = Scores(tp=95, fp=1, fn=5, tn=899)
    assert s.precision == pytest.approx(95 / 96)
    assert s.recall == pytest.approx(0.95)
    assert s.f1 == pytest.approx(2 * (95 / 96) * 0.95 / (95 / 96 + 0.95))
    assert Scores(0, 0, 0, 10).to_dict()["precision"] == 0.0


def test_labels_without_roles_or_rings_still_evaluate(
    detected_db: Path, small_sim: Path, tmp_path: Path
) -> None:
    full = pq.read_table(small_sim / "labels.parquet")
    slim = tmp_path / "slim.parquet"
    pq.write_table(full.select(["account_id", "is_fraud"]), slim)
    assert read_labels(slim).column("role").null_count == full.num_rows
    with Warehouse.open(detected_db, read_only=True) as wh:
        with_roles = evaluate(wh, small_sim / "labels.parquet")
        without = evaluate(wh, slim)
    assert without["system"] == with_roles["system"]
    assert [r["role"] for r in without["false_positives_by_role"]] == ["(none)"]
    assert [r["ring_id"] for r in without["rings"]] == ["(no ring id)"]


def test_unknown_accounts_count_as_not_flagged(detected_db: Path, tmp_path: Path) -> None:
    labels = tmp_path / "labels.parquet"
    pq.write_table(
        pa.table({"account_id": ["nobody-1", "nobody-2"], "is_fraud": [True, False]}), labels
    )
    with Warehouse.open(detected_db, read_only=True) as wh:
        result = evaluate(wh, labels)
    assert result["system"]["fn"] == 1 and result["system"]["tn"] == 1


def test_evaluation_needs_a_run_and_real_labels(fresh_db: Path, tmp_path: Path) -> None:
    with pytest.raises(BadLabels, match="no labels file"):
        read_labels(tmp_path / "absent.parquet")
    labels = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"account_id": ["a"], "is_fraud": [True]}), labels)
    with Warehouse.open(fresh_db) as wh, pytest.raises(NoDetectionRun, match="detect"):
        evaluate(wh, labels)
