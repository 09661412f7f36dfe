"""Load call logs and account exports into the warehouse, exactly once, quarantining bad rows.

The Python API the CLI and the control plane use::

    with Warehouse.open(db) as wh:
        report = ingest_file(wh, "calls.parquet", "calls")     # -> IngestReport
        reports = ingest_files(wh, paths, "accounts")          # refused files reported, not raised
        reports = ingest_spool(wh, "spool/")                   # every closed gateway segment, once

A file is loaded in one transaction together with its ``ingest_ledger`` row, so a process killed
mid-import leaves the warehouse as it was before that file. The ledger holds each file's SHA-256:
importing the same bytes again is a no-op reported as ``already_loaded``. Calls whose ``call_id``
is already stored are skipped as duplicates (overlapping exports, a file partly loaded under
another name); a ``call_id`` repeated inside one file keeps its first row and quarantines the
others. Accounts are upserted by ``account_id``: a later import replaces the stored row, an
identical row counts as a duplicate. Always ``rows_read == rows_loaded + rows_duplicate +
rows_quarantined``.
"""

# ruff: noqa: S608  -- SQL text is built here from contract allow-lists and sql.ident()-quoted
# names; every value is bound as a $parameter.

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import duckdb

from ingest import sql
from ingest.blocks import OnBytes
from ingest.exceptions import IngestError, UnreadableInput
from ingest.formats import Format, detect_format, sha256_file
from ingest.settings import IngestSettings, get_settings
from ingest.staging import drop_stage, first_line, row_count, stage
from ingest.warehouse import Warehouse, checked_size

Kind = Literal["calls", "accounts"]
Status = Literal["loaded", "already_loaded", "refused"]


@dataclass
class IngestReport:
    """What happened to one file."""

    path: str
    kind: Kind
    status: Status
    format: Format | None = None
    sha256: str | None = None
    batch_id: int | None = None
    rows_read: int = 0
    rows_loaded: int = 0
    rows_updated: int = 0
    """Of ``rows_loaded``, the accounts that replaced a stored row."""
    rows_duplicate: int = 0
    rows_quarantined: int = 0
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ingest_file(
    wh: Warehouse,
    path: str | Path,
    kind: Kind,
    fmt: str | None = None,
    *,
    on_bytes: OnBytes | None = None,
    settings: IngestSettings | None = None,
) -> IngestReport:
    """Load one file of ``kind`` rows; raise :class:`UnreadableInput` if it is refused whole."""
    if kind not in sql.KINDS:
        raise IngestError(f"unknown kind {kind!r}; expected one of {sorted(sql.KINDS)}")
    source = Path(path)
    if not source.is_file():
        raise UnreadableInput(f"{source}: no such file")
    started = time.perf_counter()
    fmt_ = detect_format(source, fmt)
    settings = settings or get_settings()
    report = IngestReport(str(source), kind, "already_loaded", fmt_)
    # Identical bytes have the same size: only a file whose size is in the ledger can have been
    # loaded before, so only then is it hashed up front. Otherwise it is hashed while it loads.
    seen_size = wh.scalar(
        "SELECT count(*) FROM ingest_ledger WHERE kind = $kind AND size_bytes = $size",
        {"kind": kind, "size": source.stat().st_size},
    )
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        hashing = pool.submit(sha256_file, source)
        if seen_size and _already_loaded(wh, report, hashing.result()):
            report.seconds = time.perf_counter() - started
            return report
        try:
            limit = checked_size(settings.memory_limit, "INGEST_MEMORY_LIMIT")
        except ValueError as exc:
            raise IngestError(str(exc)) from exc
        with wh.memory_limit(limit, "INGEST_MEMORY_LIMIT"):
            _load(wh, source, kind, fmt_, report, on_bytes, settings, hashing.result)
    report.status = "loaded"
    report.seconds = time.perf_counter() - started
    return report


def _already_loaded(wh: Warehouse, report: IngestReport, digest: str) -> bool:
    """Fill ``report`` from the ledger if a file with this content was loaded before."""
    report.sha256 = digest
    prior = wh.fetchone(
        "SELECT batch_id, rows_read FROM ingest_ledger "
        "WHERE kind = $kind AND content_sha256 = $sha ORDER BY batch_id LIMIT 1",
        {"kind": report.kind, "sha": digest},
    )
    if prior is None:
        return False
    report.batch_id, report.rows_read = int(prior[0]), int(prior[1])
    report.rows_duplicate = report.rows_read
    return True


def ingest_files(
    wh: Warehouse,
    paths: Iterable[str | Path],
    kind: Kind,
    fmt: str | None = None,
    *,
    on_bytes: OnBytes | None = None,
) -> list[IngestReport]:
    """Load each file on its own; a refused file is reported (status ``refused``), not raised."""
    reports: list[IngestReport] = []
    for path in paths:
        try:
            reports.append(ingest_file(wh, path, kind, fmt, on_bytes=on_bytes))
        except UnreadableInput as exc:
            reports.append(IngestReport(str(path), kind, "refused", error=str(exc)))
    return reports


def spool_segments(directory: str | Path) -> list[Path]:
    """The closed segments of a gateway spool (``DIR/segments/*.parquet``, or ``DIR/*.parquet``
    when ``DIR`` is the segments folder itself), oldest name first."""
    root = Path(directory)
    if not root.is_dir():
        raise UnreadableInput(f"{root}: no such spool folder")
    folder = root / "segments" if (root / "segments").is_dir() else root
    return sorted(p for p in folder.glob("*.parquet") if p.is_file())


def ingest_spool(
    wh: Warehouse, directory: str | Path, *, on_bytes: OnBytes | None = None
) -> list[IngestReport]:
    """Load every closed spool segment not loaded before, each exactly once.

    Segments never change once renamed into place, so one already in the ledger under the same
    path and size is skipped without hashing it again; any other is hashed and loaded (or found
    by its hash, if it was loaded under another name).
    """
    segments = spool_segments(directory)
    known = {
        (row[0], int(row[1])): (int(row[2]), int(row[3]))
        for row in wh.fetchall(
            "SELECT source_path, size_bytes, batch_id, rows_read FROM ingest_ledger "
            "WHERE kind = 'calls'"
        )
    }
    reports: list[IngestReport] = []
    for segment in segments:
        seen = known.get((str(segment.resolve()), segment.stat().st_size))
        if seen is not None:
            reports.append(
                IngestReport(
                    str(segment),
                    "calls",
                    "already_loaded",
                    "parquet",
                    batch_id=seen[0],
                    rows_read=seen[1],
                    rows_duplicate=seen[1],
                )
            )
            continue
        reports.extend(ingest_files(wh, [segment], "calls", "parquet", on_bytes=on_bytes))
    return reports


# -- one file, in one transaction -------------------------------------------------------------


def _load(
    wh: Warehouse,
    source: Path,
    kind: Kind,
    fmt: Format,
    report: IngestReport,
    on_bytes: OnBytes | None,
    settings: IngestSettings,
    digest: Callable[[], str],
) -> None:
    """Stage the file (outside the transaction), then write it and its ledger row in one."""
    started_at = datetime.now(UTC)
    dir_ = None if settings.temp_dir is None else str(settings.temp_dir)
    with tempfile.TemporaryDirectory(prefix="distillguard-ingest-", dir=dir_) as scratch:
        try:
            stage(wh, source, sql.KINDS[kind], fmt, on_bytes, settings, Path(scratch))
            with wh.transaction():
                batch = int(wh.scalar("SELECT nextval('ingest_batch_seq')"))
                _write(wh, kind, batch, str(source.resolve()), report)
                report.sha256 = digest()
                _record(wh, batch, source, fmt, report, started_at)
                report.batch_id = batch
        except (duckdb.InvalidInputException, duckdb.IOException) as exc:
            raise UnreadableInput(f"{source}: cannot be read as {fmt}: {first_line(exc)}") from exc
        except (EOFError, OSError) as exc:  # a truncated .gz, an unreadable file
            raise UnreadableInput(f"{source}: cannot be read: {exc}") from exc
        finally:
            drop_stage(wh)


def _record(
    wh: Warehouse,
    batch: int,
    source: Path,
    fmt: Format,
    report: IngestReport,
    started_at: datetime,
) -> None:
    """The file's ledger row, written in the same transaction as its rows."""
    wh.execute(
        "INSERT INTO ingest_ledger VALUES ($batch, $kind, $path, $fmt, $sha, $size, "
        "$read, $loaded, $updated, $dup, $quarantined, $started, $finished)",
        {
            "batch": batch,
            "kind": report.kind,
            "path": str(source.resolve()),
            "fmt": fmt,
            "sha": report.sha256,
            "size": source.stat().st_size,
            "read": report.rows_read,
            "loaded": report.rows_loaded,
            "updated": report.rows_updated,
            "dup": report.rows_duplicate,
            "quarantined": report.rows_quarantined,
            "started": started_at,
            "finished": datetime.now(UTC),
        },
    )


def _write(wh: Warehouse, kind: Kind, batch: int, path: str, report: IngestReport) -> None:
    """Quarantine, deduplicate and write the staged rows; fill the report's counts."""
    params = {"batch": batch, "kind": kind, "path": path}
    # Counted first: when the file's own statistics show every row is valid, DuckDB answers this
    # without reading the rows, and the quarantine pass is skipped.
    counts = wh.fetchone(f"SELECT count(*), count(__reason) FROM {sql.STAGE}") or (0, 0)
    report.rows_read = int(counts[0])
    quarantined = row_count(wh.execute(sql.quarantine_bad_rows(), params)) if counts[1] else 0
    key = sql.KEYS[kind]
    repeated = bool(wh.fetchall(sql.repeated_keys(key) + " LIMIT 1"))
    wh.execute(sql.in_file_duplicates(key, candidates=repeated))
    excluded = int(wh.scalar(f"SELECT count(*) FROM {sql.EXCLUDED}"))
    if excluded:
        quarantined += row_count(wh.execute(sql.quarantine_duplicates(kind), params))
    table = sql.TABLES[kind]
    if wh.scalar(f"SELECT EXISTS (SELECT 1 FROM {table})"):
        duplicates = row_count(wh.execute(sql.already_stored(kind)))
        excluded += duplicates
    else:
        duplicates = 0
    if kind == "accounts":
        report.rows_updated = int(wh.scalar(sql.count_updates(kind, exclusions=excluded > 0)))
    loaded = row_count(wh.execute(sql.insert_rows(kind, exclusions=excluded > 0), {"batch": batch}))
    report.rows_loaded, report.rows_duplicate = loaded, duplicates
    report.rows_quarantined = quarantined
    if loaded + duplicates + quarantined != report.rows_read:
        raise IngestError(
            f"{path}: read {report.rows_read} rows but loaded {loaded}, skipped {duplicates} "
            f"and quarantined {quarantined}; nothing was written (this is a bug)"
        )
