"""The control plane: the one process that owns the warehouse read-write.

A background thread ingests closed gateway segments from the spool every ``ingest_interval_s``,
and runs detection when data arrived since the last run (at most every ``detect_interval_s``) or
when someone asks (:meth:`ControlPlane.request_detection`). Request handlers read and write through
their own DuckDB cursor (:meth:`ControlPlane.cursor`), so pages stay served during a detection run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from dashboards.cache import PromptTexts, RunCache
from dashboards.settings import DashboardsSettings
from guard.state import StateStore, open_store
from ingest.warehouse import Warehouse
from policies.enforcement import EnforcementPolicy, load_enforcement

log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class ControlPlane:
    """The warehouse, the published state and the ingest/detection loop of ``serve``."""

    def __init__(self, settings: DashboardsSettings) -> None:
        self.settings = settings
        self.warehouse = Warehouse.open(settings.db)
        try:
            self.store: StateStore = open_store(
                settings.state, settings.redis, settings.redis_prefix
            )
        except Exception:
            self.warehouse.close()
            raise
        self.policy: EnforcementPolicy = load_enforcement().model
        self.maps = RunCache(maxsize=8)  # cluster maps of recent detection runs
        self.prompts = PromptTexts()
        self.status: dict[str, Any] = {
            "ingested_segments": 0,
            "ingested_rows": 0,
            "last_ingest": None,
            "last_detection": None,
            "detection_running": False,
            "last_error": None,
        }
        self._requested = threading.Event()
        self._stop = threading.Event()
        self._last_attempt = float("-inf")
        self._thread: threading.Thread | None = None

    # -- access ------------------------------------------------------------------------------
    @contextmanager
    def cursor(self) -> Iterator[Warehouse]:
        """A warehouse on its own cursor of the shared connection, for one request or job."""
        cursor = self.warehouse.con.cursor()
        try:
            yield Warehouse(cursor, self.warehouse.path)
        finally:
            cursor.close()

    # -- the loop ----------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="control-plane", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the loop, letting a detection run in progress finish."""
        self._stop.set()
        self._requested.set()
        if self._thread is not None:
            self._thread.join(timeout=600)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.store.close()
        self.warehouse.close()

    def request_detection(self) -> None:
        """Run detection at the loop's next turn (it does not wait for the schedule)."""
        self._requested.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # keep serving; the error is shown on /api/status
                log.exception("control-plane loop failed")
                self.status["last_error"] = f"{_now()}: {exc}"
            self._requested.wait(self.settings.ingest_interval_s)

    def tick(self) -> dict[str, Any]:
        """One turn: ingest new segments, then detect if asked or due. Returns what it did."""
        did: dict[str, Any] = {"ingested": self.ingest(), "detected": None}
        requested = self._requested.is_set()
        due = time.monotonic() - self._last_attempt >= self.settings.detect_interval_s
        if requested or (due and self.stale()):
            self._requested.clear()
            did["detected"] = self.detect()
        return did

    def ingest(self) -> int:
        """Load closed spool segments not loaded before; returns the rows loaded."""
        spool = self.settings.spool
        if spool is None or not (spool / "segments").is_dir():
            return 0
        from ingest.loader import ingest_spool

        with self.cursor() as wh:
            reports = ingest_spool(wh, spool)
        loaded = [r for r in reports if r.status == "loaded"]
        rows = sum(r.rows_loaded for r in loaded)
        if loaded:
            self.status["ingested_segments"] += len(loaded)
            self.status["ingested_rows"] += rows
            self.status["last_ingest"] = _now()
        return rows

    def stale(self) -> bool:
        """Whether calls were loaded after the newest detection run finished (or none ran)."""
        with self.cursor() as wh:
            return bool(
                wh.scalar(
                    "SELECT coalesce((SELECT max(finished_at) FROM ingest_ledger "
                    "WHERE kind = 'calls' AND rows_loaded > 0) > "
                    "(SELECT coalesce(max(finished_at), '-infinity'::TIMESTAMPTZ) "
                    "FROM detection_runs), false)"
                )
            )

    def detect(self) -> dict[str, Any] | None:
        """Run detection now (in this thread); the summary, or None when there are no calls."""
        from detectors.exceptions import NothingToDetect
        from detectors.pipeline import run_detection

        self._last_attempt = time.monotonic()
        self.status["detection_running"] = True
        try:
            with self.cursor() as wh:
                summary = run_detection(
                    wh,
                    device=self.settings.detect_device,
                    embed_budget=self.settings.detect_embed_budget,
                ).to_dict()
        except NothingToDetect:
            return None
        finally:
            self.status["detection_running"] = False
        self.status["last_detection"] = {"at": _now(), **summary}
        return summary
