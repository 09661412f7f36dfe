"""The spool's on-disk formats: append-only journals and closed Parquet segments.

A journal is a sequence of records, each ``length (4 bytes, big-endian) | crc32 (4) | JSON``. It is
held under an exclusive ``flock`` by the worker that writes it; a journal nobody holds was left by a
process that died, and is *recovered*: its valid prefix becomes a segment (a torn last record was
never acknowledged, so it is dropped). A journal becomes ``segments/<journal stem>.parquet`` and
that name is deterministic, so a crash between writing the segment and deleting the journal cannot
produce the records twice. A journal that cannot become a segment for a reason other than an
``OSError`` (a record that does not fit the contract's schema) is *set aside* into ``failed/``
beside it: kept for an operator, and never retried.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
import struct
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from ingest.contract import CALL_COLUMN_NAMES, CALLS_ARROW_SCHEMA

_HEADER = struct.Struct(">II")
JOURNAL_SUFFIX = ".journal"
FAILED = "failed"
"""The folder, beside the journals, that journals which cannot be sealed are moved into."""


def encode(record: dict[str, Any]) -> bytes:
    """One journal record: header and JSON payload."""
    payload = orjson.dumps(record)
    return _HEADER.pack(len(payload), zlib.crc32(payload)) + payload


def decode_all(data: bytes) -> tuple[list[dict[str, Any]], int]:
    """The records of a journal's valid prefix, and the number of trailing bytes not used."""
    records: list[dict[str, Any]] = []
    pos, end = 0, len(data)
    while pos + _HEADER.size <= end:
        length, crc = _HEADER.unpack_from(data, pos)
        payload = data[pos + _HEADER.size : pos + _HEADER.size + length]
        if len(payload) != length or zlib.crc32(payload) != crc:
            break
        records.append(orjson.loads(payload))
        pos += _HEADER.size + length
    return records, end - pos


def fsync_dir(path: Path) -> None:
    """Make a rename or unlink inside ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class Journal:
    """An open journal this process writes, held under an exclusive lock."""

    path: Path
    fd: int
    size: int = 0
    records: int = 0
    opened_at: float = 0.0

    @classmethod
    def create(cls, directory: Path) -> Journal:
        """A new, locked, empty journal in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        name = f"{socket.gethostname()}-{os.getpid()}-{time.time_ns()}-{secrets.token_hex(4)}"
        path = directory / (name + JOURNAL_SUFFIX)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fsync_dir(directory)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return cls(path, fd, 0, 0, time.monotonic())

    def write(self, data: bytes, count: int, write: Any = os.write) -> None:
        """Append ``data`` (``count`` records) and make it durable; on failure, undo the part."""
        try:
            view = memoryview(data)
            while view:
                view = view[write(self.fd, view) :]
            os.fdatasync(self.fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.fd, self.size)
            raise
        self.size += len(data)
        self.records += count

    def close(self) -> None:
        """Release the lock and the descriptor (the file stays); closing again does nothing, so
        a descriptor number the system has since given to another file is never closed."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)


def segment_path(journal: Path, segments: Path) -> Path:
    """Where the segment made from ``journal`` lives."""
    return segments / (journal.name.removesuffix(JOURNAL_SUFFIX) + ".parquet")


def records_table(records: list[dict[str, Any]]) -> pa.Table:
    """The records as a table with exactly the call-log contract's schema."""
    columns = {name: [r.get(name) for r in records] for name in CALL_COLUMN_NAMES}
    return pa.Table.from_pydict(columns, schema=CALLS_ARROW_SCHEMA)


def seal(journal: Path, segments: Path) -> tuple[int, int]:
    """Turn a closed journal into a segment, then delete it. Returns (records, torn bytes).

    The caller holds the journal's lock (its own journal, or an orphan it locked).
    """
    target = segment_path(journal, segments)
    records, torn = decode_all(journal.read_bytes())
    if records and not target.exists():
        segments.mkdir(parents=True, exist_ok=True)
        tmp = segments / f".{target.name}.{os.getpid()}.tmp"
        try:
            with open(tmp, "wb") as handle:
                pq.write_table(records_table(records), handle, compression="zstd")
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        fsync_dir(segments)
    journal.unlink()
    fsync_dir(journal.parent)
    return len(records), torn


def set_aside(journal: Path) -> Path:
    """Move a journal that cannot be sealed into ``failed/`` beside it; returns its new path."""
    failed = journal.parent / FAILED
    failed.mkdir(exist_ok=True)
    target = failed / journal.name
    os.rename(journal, target)
    fsync_dir(failed)
    fsync_dir(journal.parent)
    return target


Unsealable = Callable[[Path, Path, Exception], None]
"""Told of a journal set aside: where it was, where it is now, and why it could not be sealed."""


def _ignore(journal: Path, moved_to: Path, error: Exception) -> None:
    return None


def recover_orphans(
    journals: Path, segments: Path, skip: set[Path], unsealable: Unsealable = _ignore
) -> list[tuple[Path, int, int]]:
    """Seal every journal in ``journals`` whose writer is gone. Returns (journal, records, torn).

    A journal that cannot be sealed is set aside and reported to ``unsealable``, and the others
    are still sealed; an ``OSError`` (the disk, not the journal) stops the scan and is raised.
    """
    done: list[tuple[Path, int, int]] = []
    if not journals.is_dir():
        return done
    for path in sorted(journals.glob("*" + JOURNAL_SUFFIX)):
        if path in skip:
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live worker holds it
            try:
                if os.fstat(fd).st_ino != os.stat(path).st_ino:
                    continue
            except FileNotFoundError:
                continue  # another worker sealed it while we waited
            try:
                records, torn = seal(path, segments)
            except OSError:
                raise
            except Exception as exc:  # its records do not fit the contract
                unsealable(path, set_aside(path), exc)
                continue
            done.append((path, records, torn))
        finally:
            os.close(fd)
    return done
