"""Score a detection run against ground-truth labels, next to the per-account baseline.

Labels are a Parquet file with ``account_id`` and ``is_fraud`` (and optionally ``ring_id`` and
``role``), as ``distillguard simulate`` writes them. Reported: account-level precision, recall and
F1 for the full system and for the PRADA baseline alone; recall per true ring; false positives by
role; and, when ``replay`` checkpoints are asked for, how many calls each ring had made before it
would first have been flagged (the run is replayed on a scratch copy of the warehouse with only
the calls before each checkpoint).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from detectors.engine import register
from detectors.exceptions import BadLabels
from detectors.results import latest_run
from ingest.warehouse import Warehouse


@dataclass(frozen=True)
class Scores:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "f1": round(self.f1, 4),
        }


def read_labels(path: Path) -> pa.Table:
    """The labels file, checked: ``account_id`` and ``is_fraud`` required."""
    if not path.is_file():
        raise BadLabels(f"no labels file at {path}")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise BadLabels(f"{path} is not a readable Parquet file: {exc}") from exc
    missing = [c for c in ("account_id", "is_fraud") if c not in table.column_names]
    if missing:
        raise BadLabels(f"{path} lacks the column(s) {', '.join(missing)}")
    columns = {
        "account_id": table.column("account_id").cast(pa.string()),
        "is_fraud": table.column("is_fraud").cast(pa.bool_()),
        "ring_id": table.column("ring_id").cast(pa.string())
        if "ring_id" in table.column_names
        else pa.nulls(table.num_rows, pa.string()),
        "role": table.column("role").cast(pa.string())
        if "role" in table.column_names
        else pa.nulls(table.num_rows, pa.string()),
    }
    return pa.table(columns)


def _verdicts(wh: Warehouse, run_id: int) -> tuple[set[str], set[str]]:
    rows = wh.fetchall(
        "SELECT account_id, flagged, coalesce(baseline_flagged, false) FROM flags "
        "WHERE run_id = $r",
        {"r": run_id},
    )
    return {a for a, f, _ in rows if f}, {a for a, _, b in rows if b}


def _scores(labels: list[dict[str, Any]], flagged: set[str]) -> Scores:
    tp = sum(1 for r in labels if r["is_fraud"] and r["account_id"] in flagged)
    fp = sum(1 for r in labels if not r["is_fraud"] and r["account_id"] in flagged)
    fn = sum(1 for r in labels if r["is_fraud"] and r["account_id"] not in flagged)
    return Scores(tp, fp, fn, len(labels) - tp - fp - fn)


def evaluate(
    wh: Warehouse,
    labels_path: Path,
    *,
    replay: int = 0,
    run_id: int | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Evaluate the latest run (or ``run_id``) against ``labels_path``."""
    table = read_labels(labels_path)
    run = latest_run(wh) if run_id is None else {"run_id": run_id}
    rid = int(run["run_id"])
    labels = table.to_pylist()
    system, baseline = _verdicts(wh, rid)
    by_ring: dict[str, list[str]] = {}
    for row in labels:
        if row["is_fraud"]:
            by_ring.setdefault(row["ring_id"] or "(no ring id)", []).append(row["account_id"])
    roles: dict[str, dict[str, int]] = {}
    for row in labels:
        if row["is_fraud"]:
            continue
        entry = roles.setdefault(
            row["role"] or "(none)", {"accounts": 0, "system": 0, "baseline": 0}
        )
        entry["accounts"] += 1
        entry["system"] += row["account_id"] in system
        entry["baseline"] += row["account_id"] in baseline
    rings = [
        {
            "ring_id": ring,
            "accounts": len(members),
            "recall": round(sum(a in system for a in members) / len(members), 4),
            "baseline_recall": round(sum(a in baseline for a in members) / len(members), 4),
        }
        for ring, members in sorted(by_ring.items())
    ]
    result: dict[str, Any] = {
        "run_id": rid,
        "labels": str(labels_path),
        "accounts": len(labels),
        "fraud_accounts": sum(1 for r in labels if r["is_fraud"]),
        "system": _scores(labels, system).to_dict(),
        "baseline": _scores(labels, baseline).to_dict(),
        "rings": rings,
        "false_positives_by_role": [
            {"role": role, **counts} for role, counts in sorted(roles.items())
        ],
    }
    if replay > 0:
        result["time_to_flag"] = time_to_flag(wh, table, by_ring, replay, device=device)
    return result


def time_to_flag(
    wh: Warehouse,
    labels: pa.Table,
    by_ring: dict[str, list[str]],
    checkpoints: int,
    *,
    device: str = "auto",
) -> dict[str, Any]:
    """Replay detection at ``checkpoints`` evenly spaced times; per ring, the calls it had made
    before the first checkpoint at which one of its accounts was flagged, and the share of its
    accounts flagged then (system and baseline)."""
    from detectors.pipeline import run_detection

    budget = latest_run(wh)["embed_budget"]
    first, last = wh.fetchone("SELECT min(ts), max(ts) FROM calls") or (None, None)
    if first is None or last is None:
        return {"checkpoints": [], "rings": []}
    span = last - first
    cutoffs: list[datetime] = [first + span * (i / checkpoints) for i in range(1, checkpoints)]
    cutoffs.append(last + (span / 10**6))
    register(wh, "eval_labels", labels)
    ring_calls = {
        ring: [
            r[0]
            for r in wh.fetchall(
                "SELECT c.ts FROM calls AS c JOIN eval_labels AS l USING (account_id) "
                "WHERE l.is_fraud AND coalesce(l.ring_id, '(no ring id)') = $ring ORDER BY c.ts",
                {"ring": ring},
            )
        ]
        for ring in by_ring
    }
    wh.execute("DROP TABLE eval_labels")
    found: dict[str, dict[str, Any]] = {
        ring: {"system": None, "baseline": None} for ring in by_ring
    }
    with tempfile.TemporaryDirectory(prefix="distillguard-replay-") as scratch:
        copy = Path(scratch) / "replay.duckdb"
        wh.execute("CHECKPOINT")
        shutil.copyfile(wh.path, copy)
        with Warehouse.open(copy) as replica:
            for cutoff in cutoffs:
                run_detection(
                    replica, since=cutoff, until=cutoff, device=device, embed_budget=budget
                )
                rid = int(latest_run(replica)["run_id"])
                system, baseline = _verdicts(replica, rid)
                for ring, members in by_ring.items():
                    for name, flagged in (("system", system), ("baseline", baseline)):
                        hit = sum(a in flagged for a in members)
                        if found[ring][name] is None and hit:
                            found[ring][name] = {
                                "at": cutoff.isoformat(),
                                "calls_before": sum(1 for ts in ring_calls[ring] if ts < cutoff),
                                "members_flagged": round(hit / len(members), 4),
                            }
    return {
        "checkpoints": [c.isoformat() for c in cutoffs],
        "rings": [
            {"ring_id": ring, "total_calls": len(ring_calls[ring]), **found[ring]}
            for ring in sorted(by_ring)
        ],
    }
