"""The durable call log: group-committed journals rotated into Parquet segments.

``await spool.append(record)`` returns once the record is on disk (``durable``) or once it is
queued (``relaxed``: faster, but a crash loses what was queued, counted as lost). Records that
arrive while a write is in flight wait for the next one, so one ``fdatasync`` commits many records.

Layout under the spool folder: ``journal/*.journal`` (open, one per worker) and
``segments/*.parquet`` (closed, the call-log contract). A journal is sealed into a segment when it
passes ``max_bytes`` or ``max_age_s``, on shutdown, and (for journals left by a crash) at start-up.

When a write fails (disk full, folder gone or unwritable) the spool turns *unavailable*:
:meth:`Spool.append` raises :class:`SpoolUnavailable` at once, and a probe retries every
``probe_s`` until a test write succeeds, then opens a fresh journal. Every change of availability
is reported to the ``available`` hook.

A journal whose records cannot be sealed into a segment is moved to ``journal/failed/`` (nothing is
deleted), logged and reported to the ``unsealable`` hook; the other journals are sealed as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guard.exceptions import SpoolUnavailable
from guard.journal import Journal, encode, recover_orphans, seal, set_aside

log = logging.getLogger(__name__)


def _nothing(*_: int) -> None:
    return None


@dataclass
class SpoolHooks:
    """Callbacks the metrics attach to: records and bytes written, records lost, write errors,
    records sealed, journals set aside, and whether the spool can be written (at start and at
    every change)."""

    written: Callable[[int, int], None] = _nothing
    lost: Callable[[int], None] = _nothing
    failed: Callable[[], None] = _nothing
    sealed: Callable[[int], None] = _nothing
    unsealable: Callable[[], None] = _nothing
    available: Callable[[bool], None] = _nothing


class Spool:
    """One worker's writer into a spool folder."""

    def __init__(
        self,
        root: Path,
        *,
        durable: bool = True,
        max_bytes: int = 64 * 1024 * 1024,
        max_age_s: float = 60.0,
        probe_s: float = 0.5,
        hooks: SpoolHooks | None = None,
        write: Callable[[int, Any], int] = os.write,
        inline_commit_s: float = 0.001,
    ) -> None:
        """``inline_commit_s``: in durable mode, while a commit (write and ``fdatasync``) takes
        less than this on average, it runs on the event loop itself: handing each commit to the
        I/O thread and back costs more than a fast disk's fsync. A disk that turns slow raises
        the average past the bound and commits go back to the I/O thread, so the loop does not
        wait on a slow disk for long."""
        self.root = Path(root)
        self.journals = self.root / "journal"
        self.segments = self.root / "segments"
        self.durable = durable
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.probe_s = probe_s
        self.hooks = hooks or SpoolHooks()
        self._write = write
        self.inline_commit_s = inline_commit_s
        self._commit_s = 0.0  # moving average of the commit time, seconds
        self._journal: Journal | None = None
        self._error: str | None = "the spool has not been opened"
        self._buffer: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._io = ThreadPoolExecutor(1, thread_name_prefix="spool-io")
        self._sealer = ThreadPoolExecutor(1, thread_name_prefix="spool-seal")
        self._sealing: set[asyncio.Future[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._last_scan = 0.0

    # --- state -----------------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """True while records can be written."""
        return self._error is None

    @property
    def error(self) -> str | None:
        """Why the spool is unavailable, or None."""
        return self._error

    def _unavailable(self, exc: BaseException) -> SpoolUnavailable:
        return SpoolUnavailable(f"the call log at {self.root} cannot be written: {exc}")

    def _set_error(self, error: str | None) -> None:
        """Record why the spool cannot be written (None: it can); report a change."""
        changed = (error is None) != (self._error is None)
        self._error = error
        if changed:
            self.hooks.available(error is None)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Recover journals left by a crash, open a journal, start the rotation/probe ticker."""
        if not await self._try_open():
            self.hooks.available(False)  # unavailable from the start: no change, but news
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    async def _try_open(self) -> bool:
        loop = asyncio.get_running_loop()
        try:
            journal = await loop.run_in_executor(self._io, self._probe_and_open)
        except OSError as exc:
            self._set_error(str(self._unavailable(exc)))
            return False
        self._journal = journal
        self._set_error(None)
        self._scan()
        return True

    def _probe_and_open(self) -> Journal:
        self.journals.mkdir(parents=True, exist_ok=True)
        self.segments.mkdir(parents=True, exist_ok=True)
        probe = self.journals / f".probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(b"\0" * 65536)
                while view:
                    view = view[self._write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        return Journal.create(self.journals)

    def _scan(self) -> None:
        """Seal orphaned journals in the background."""
        self._last_scan = time.monotonic()
        own = {self._journal.path} if self._journal else set()
        future = asyncio.get_running_loop().run_in_executor(self._sealer, self._recover, own)
        self._sealing.add(future)
        future.add_done_callback(self._sealing.discard)

    def _recover(self, own: set[Path]) -> None:
        try:
            recovered = recover_orphans(self.journals, self.segments, own, self._unsealable)
            for path, records, torn in recovered:
                log.warning("recovered %d records from %s (%d torn bytes)", records, path, torn)
                self.hooks.sealed(records)
        except OSError as exc:
            log.warning("recovery of orphaned journals deferred: %s", exc)

    def _unsealable(self, journal: Path, moved_to: Path, error: Exception) -> None:
        log.error(
            "journal %s cannot be sealed (%.300r): moved to %s; its records are in no segment",
            journal, error, moved_to,
        )  # fmt: skip
        self.hooks.unsealable()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.probe_s)
            try:
                if not self.available:
                    await self._try_open()
                    continue
                journal = self._journal
                if (
                    journal is not None
                    and journal.records
                    and time.monotonic() - journal.opened_at >= self.max_age_s
                ):
                    async with self._lock:
                        await self._rotate()
                if time.monotonic() - self._last_scan >= 10.0:
                    self._scan()
            except Exception:  # the ticker must survive anything
                log.exception("spool ticker")

    async def close(self) -> None:
        """Commit what is queued, seal the open journal, wait for sealing to finish."""
        if self._ticker:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._flusher:
            await asyncio.gather(self._flusher, return_exceptions=True)
        loop = asyncio.get_running_loop()
        journal, self._journal = self._journal, None
        self._set_error("the spool is closed")
        if journal is not None:
            await loop.run_in_executor(self._sealer, self._seal_own, journal)
        if self._sealing:
            await asyncio.gather(*self._sealing, return_exceptions=True)
        self._io.shutdown(wait=True)
        self._sealer.shutdown(wait=True)

    # --- writing ---------------------------------------------------------------------------

    async def append(self, record: dict[str, Any]) -> None:
        """Queue a record; in durable mode return only once it is on disk."""
        if self._error is not None:
            raise SpoolUnavailable(self._error)
        self._buffer.append(encode(record))
        waiter: asyncio.Future[None] | None = None
        if self.durable:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        if waiter is not None:
            await waiter

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._buffer:
            batch, waiters = self._buffer, self._waiters
            self._buffer, self._waiters = [], []
            data = b"".join(batch)
            async with self._lock:
                journal = self._journal
                try:
                    if journal is None:
                        raise OSError(self._error or "no journal is open")
                    started = time.perf_counter()
                    if self.durable and self._commit_s < self.inline_commit_s:
                        journal.write(data, len(batch), self._write)  # on the loop: see __init__
                    else:
                        await loop.run_in_executor(
                            self._io, journal.write, data, len(batch), self._write
                        )
                    self._commit_s += 0.2 * (time.perf_counter() - started - self._commit_s)
                except OSError as exc:
                    self._fail(exc, batch, waiters)
                    continue
                self.hooks.written(len(batch), len(data))
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
                if journal.size >= self.max_bytes:
                    await self._rotate()

    def _fail(
        self, exc: BaseException, batch: list[bytes], waiters: list[asyncio.Future[None]]
    ) -> None:
        error = self._unavailable(exc)
        log.error("%s", error)
        if self._error is None:
            self._set_error(str(error))
            self.hooks.failed()
            if self._journal is not None:  # leave it (its committed prefix) to recovery
                self._journal.close()
                self._journal = None
        if not self.durable:
            self.hooks.lost(len(batch))
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    async def _rotate(self) -> None:
        """Switch to a fresh journal and seal the old one in the background (lock held)."""
        old = self._journal
        if old is None or not old.records:
            return
        loop = asyncio.get_running_loop()
        try:
            self._journal = await loop.run_in_executor(self._io, Journal.create, self.journals)
        except OSError as exc:
            self._fail(exc, [], [])  # closes the old journal, left to recovery
            return
        future = loop.run_in_executor(self._sealer, self._seal_own, old)
        self._sealing.add(future)
        future.add_done_callback(self._sealing.discard)

    def _seal_own(self, journal: Journal) -> None:
        try:
            records, _ = seal(journal.path, self.segments)
            self.hooks.sealed(records)
        except OSError as exc:  # stays a journal; the next recovery scan seals it
            log.warning("sealing %s deferred: %s", journal.path, exc)
        except Exception as exc:  # its records do not fit the contract: set it aside
            try:
                moved_to = set_aside(journal.path)
            except OSError as move_error:  # the next recovery scan sets it aside
                log.warning("setting %s aside deferred: %s", journal.path, move_error)
            else:
                self._unsealable(journal.path, moved_to, exc)
        finally:
            journal.close()
