"""Reading a detection run back: flagged accounts and rings with their evidence, and exports.

The Python API the review console and the demo use::

    with Warehouse.open(db, read_only=True) as wh:
        run = latest_run(wh)                       # the newest detection run (a dict)
        accounts = flagged_accounts(wh)            # list of dicts, highest score first
        rings = ring_list(wh)                      # list of dicts with evidence
        clusters = cluster_list(wh, "template")    # query clusters with their statistics
        evidence = account_evidence(wh, "acct_1")  # one account's verdict and evidence
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from detectors.exceptions import DetectorError, NoDetectionRun
from ingest.warehouse import Warehouse


def latest_run(wh: Warehouse) -> dict[str, Any]:
    """The newest detection run; :class:`NoDetectionRun` when there is none."""
    rows = wh.records("SELECT * FROM detection_runs ORDER BY run_id DESC LIMIT 1")
    if not rows:
        raise NoDetectionRun(
            f"no detection run in {wh.path}: run `distillguard detect --db {wh.path}` first"
        )
    run = rows[0]
    run["timings"] = json.loads(run["timings"]) if run["timings"] else {}
    return run


def _run_id(wh: Warehouse, run_id: int | None) -> int:
    if run_id is None:
        return int(latest_run(wh)["run_id"])
    if not wh.scalar("SELECT count(*) FROM detection_runs WHERE run_id = $r", {"r": run_id}):
        raise NoDetectionRun(f"no detection run {run_id} in {wh.path}")
    return run_id


def flagged_accounts(
    wh: Warehouse, run_id: int | None = None, *, include_unflagged: bool = False
) -> list[dict[str, Any]]:
    """Accounts of a run (flagged only unless asked), highest score first, with top reasons."""
    rid = _run_id(wh, run_id)
    rows = wh.records(
        "SELECT f.account_id, f.ring_id, f.score, f.flagged, r.score AS ring_score, "
        "r.size AS ring_size, f.baseline_score, f.baseline_flagged, f.reasons "
        "FROM flags AS f LEFT JOIN rings AS r ON r.run_id = f.run_id AND r.ring_id = f.ring_id "
        "WHERE f.run_id = $r AND (f.flagged OR $all) "
        "ORDER BY f.score DESC, f.account_id",
        {"r": rid, "all": include_unflagged},
    )
    return rows


def ring_list(wh: Warehouse, run_id: int | None = None) -> list[dict[str, Any]]:
    """Candidate rings of a run, flagged first then by score, with their evidence."""
    rid = _run_id(wh, run_id)
    rows = wh.records(
        "SELECT r.ring_id, r.size, r.score, r.flagged, r.evidence, "
        "count(f.account_id) FILTER (WHERE f.flagged) AS flagged_accounts "
        "FROM rings AS r LEFT JOIN flags AS f ON f.run_id = r.run_id AND f.ring_id = r.ring_id "
        "WHERE r.run_id = $r GROUP BY ALL ORDER BY r.flagged DESC, r.score DESC, r.ring_id",
        {"r": rid},
    )
    for row in rows:
        row["evidence"] = json.loads(row["evidence"])
    return rows


def cluster_list(wh: Warehouse, kind: str = "template", limit: int = 50) -> list[dict[str, Any]]:
    """The latest run's query clusters of ``kind`` (template or embedding), most suspicious first.

    Clusters are rebuilt by every run, so these are always the latest run's.
    """
    if kind not in ("template", "embedding"):
        raise DetectorError(f"unknown cluster kind {kind!r}: use template or embedding")
    latest_run(wh)
    return wh.records(
        "SELECT * FROM clusters WHERE kind = $k ORDER BY suspicion DESC, n_accounts DESC, "
        "cluster_id LIMIT $n",
        {"k": kind, "n": limit},
    )


def account_evidence(wh: Warehouse, account_id: str, run_id: int | None = None) -> dict[str, Any]:
    """One account's verdict in a run with its reasons and evidence."""
    rid = _run_id(wh, run_id)
    rows = wh.records(
        "SELECT account_id, ring_id, score, flagged, baseline_score, baseline_flagged, reasons, "
        "evidence FROM flags WHERE run_id = $r AND account_id = $a",
        {"r": rid, "a": account_id},
    )
    if not rows:
        raise DetectorError(f"account {account_id!r} is not in detection run {rid}")
    row = rows[0]
    row["evidence"] = json.loads(row["evidence"])
    return row


def export(
    rows: list[dict[str, Any]], rings: list[dict[str, Any]], fmt: str, out: Path | None
) -> str | None:
    """Write flags as ``json`` (accounts and rings), ``parquet`` or ``csv`` (accounts).

    Returns the text for stdout when ``out`` is None (json and csv); parquet needs ``out``.
    """
    if fmt == "json":
        text = json.dumps({"accounts": rows, "rings": rings}, indent=2, default=str)
        return _emit(text, out)
    table = pa.table(
        {
            "account_id": pa.array([r["account_id"] for r in rows], pa.string()),
            "ring_id": pa.array([r["ring_id"] for r in rows], pa.string()),
            "score": pa.array([r["score"] for r in rows], pa.float64()),
            "flagged": pa.array([r["flagged"] for r in rows], pa.bool_()),
            "ring_score": pa.array([r["ring_score"] for r in rows], pa.float64()),
            "ring_size": pa.array([r["ring_size"] for r in rows], pa.int64()),
            "baseline_score": pa.array([r["baseline_score"] for r in rows], pa.float64()),
            "baseline_flagged": pa.array([r["baseline_flagged"] for r in rows], pa.bool_()),
            "reasons": pa.array(["; ".join(r["reasons"]) for r in rows], pa.string()),
        }
    )
    if fmt == "parquet":
        if out is None:
            raise DetectorError("--format parquet needs --out PATH (Parquet is not for a terminal)")
        import pyarrow.parquet as pq

        pq.write_table(table, out)
        return None
    if fmt == "csv":
        import io

        import pyarrow.csv as pacsv

        buffer = io.BytesIO()
        pacsv.write_csv(table, buffer)
        return _emit(buffer.getvalue().decode("utf-8"), out)
    raise DetectorError(f"unknown format {fmt!r}: use table, json, parquet or csv")


def _emit(text: str, out: Path | None) -> str | None:
    if out is None:
        return text
    out.write_text(text, encoding="utf-8")
    return None
