"""Read what was imported: the ledger summary and the quarantined rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ingest.warehouse import Warehouse


@dataclass
class KindSummary:
    """Totals over the files of one kind."""

    files: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_updated: int = 0
    rows_duplicate: int = 0
    rows_quarantined: int = 0


@dataclass
class LedgerSummary:
    """Files and rows per kind, rows stored, and quarantined rows by reason."""

    kinds: dict[str, KindSummary] = field(default_factory=dict)
    stored: dict[str, int] = field(default_factory=dict)
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    last_loaded_at: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kinds": {k: vars(v) for k, v in self.kinds.items()},
            "stored": self.stored,
            "quarantine_by_reason": self.quarantine_by_reason,
            "last_loaded_at": self.last_loaded_at,
        }


def ledger_summary(wh: Warehouse) -> LedgerSummary:
    """What the ledger says was loaded, with the rows stored now and the quarantine by reason."""
    summary = LedgerSummary()
    for kind in ("calls", "accounts"):
        summary.kinds[kind] = KindSummary()
    for row in wh.fetchall(
        "SELECT kind, count(*), sum(rows_read), sum(rows_loaded), sum(rows_updated), "
        "sum(rows_duplicate), sum(rows_quarantined) FROM ingest_ledger GROUP BY kind"
    ):
        summary.kinds[str(row[0])] = KindSummary(*(int(v) for v in row[1:]))
    summary.stored = {
        "calls": int(wh.scalar("SELECT count(*) FROM calls")),
        "accounts": int(wh.scalar("SELECT count(*) FROM accounts")),
    }
    summary.quarantine_by_reason = {
        str(reason): int(n)
        for reason, n in wh.fetchall(
            "SELECT reason, count(*) AS n FROM quarantine GROUP BY reason ORDER BY n DESC, reason"
        )
    }
    last = wh.scalar("SELECT max(finished_at) FROM ingest_ledger")
    summary.last_loaded_at = None if last is None else last.isoformat()
    return summary


def quarantined_rows(
    wh: Warehouse, *, limit: int = 20, reason: str | None = None, kind: str | None = None
) -> list[dict[str, Any]]:
    """The most recently quarantined rows (newest batch first, then by line)."""
    return wh.records(
        "SELECT q.batch_id, q.kind, q.source_path, q.line, q.reason, q.raw FROM quarantine q "
        "WHERE ($reason IS NULL OR q.reason = $reason) AND ($kind IS NULL OR q.kind = $kind) "
        "ORDER BY q.batch_id DESC, q.line LIMIT $limit",
        {"reason": reason, "kind": kind, "limit": limit},
    )
