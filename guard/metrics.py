"""Prometheus metrics for ``/metrics``, summed over all workers.

With several workers, ``distillguard gateway`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder
before the workers start; each worker then writes its values to memory-mapped files there and any
worker's ``/metrics`` reports the sum. With one in-process app (tests) the values stay in memory.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from guard.spool import SpoolHooks

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
_SLOW = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """The gateway's counters and histograms."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        r = self.registry
        self.requests = Counter(
            "guard_requests", "Requests answered, by endpoint and status.",
            ["endpoint", "status"], registry=r,
        )  # fmt: skip
        self.added = Histogram(
            "guard_added_latency_seconds", "Time the gateway adds over the upstream call.",
            buckets=_FAST, registry=r,
        )  # fmt: skip
        self.upstream = Histogram(
            "guard_upstream_latency_seconds", "Upstream time, request sent to last byte.",
            buckets=_SLOW, registry=r,
        )  # fmt: skip

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, registry=r)

        self.records = counter(
            "guard_spool_records_written", "Call records committed to the spool."
        )
        self.bytes = counter("guard_spool_bytes_written", "Bytes committed to spool journals.")
        self.sealed = counter("guard_spool_records_sealed", "Records sealed into Parquet segments.")
        self.lost = counter(
            "guard_records_lost", "Records acknowledged but never written (must stay 0)."
        )
        self.write_errors = counter(
            "guard_spool_write_errors", "Times the spool became unwritable."
        )
        self.unsealable = counter(
            "guard_spool_journals_set_aside",
            "Journals that could not be sealed, moved to journal/failed/ (must stay 0).",
        )
        self.unavailable = counter(
            "guard_spool_unavailable_rejections", "Requests refused (503) for want of a call log."
        )
        self.rate_limited = Counter(
            "guard_rate_limit_rejections", "Requests refused (429), by limit.", ["limit"],
            registry=r,
        )  # fmt: skip
        self.spool_ok = Gauge(
            "guard_spool_available", "1 while this worker can write its call log.",
            multiprocess_mode="livemin", registry=r,
        )  # fmt: skip

    def spool_hooks(self) -> SpoolHooks:
        """Callbacks that feed the spool's events into these metrics."""

        def written(records: int, size: int) -> None:
            self.records.inc(records)
            self.bytes.inc(size)

        def available(ok: bool) -> None:
            self.spool_ok.set(1 if ok else 0)

        return SpoolHooks(
            written=written, lost=self.lost.inc, failed=self.write_errors.inc,
            sealed=self.sealed.inc, unsealable=self.unsealable.inc, available=available,
        )  # fmt: skip

    def render(self) -> bytes:
        """The exposition text."""
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
