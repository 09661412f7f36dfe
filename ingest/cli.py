"""``distillguard ingest ...``: load call logs, account exports and gateway spools; inspect.

Exit codes: 0 when every file was loaded (or was already), 1 with ``--strict`` when rows were
quarantined, 2 when a file was refused whole (each refused file is named on stderr).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from distillguard.options import DEFAULT_DB, DbOption

if TYPE_CHECKING:
    from ingest.loader import IngestReport, Kind
    from ingest.warehouse import Warehouse


class FileFormat(StrEnum):
    auto = "auto"
    parquet = "parquet"
    jsonl = "jsonl"
    csv = "csv"


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


PathsArg = Annotated[list[Path], typer.Argument(help="Files to load.", show_default=False)]
StrictOption = Annotated[
    bool, typer.Option("--strict", help="Exit 1 when any row was quarantined.")
]
FormatOption = Annotated[
    FileFormat,
    typer.Option("--format", help="The files' format; auto: by extension (.gz allowed)."),
]

group = typer.Typer(
    help="Load call logs, account exports and gateway spools into the warehouse.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.add_typer(group, name="ingest")


@group.command("calls")
def calls_command(
    paths: PathsArg,
    db: DbOption = DEFAULT_DB,
    strict: StrictOption = False,
    fmt: FormatOption = FileFormat.auto,
) -> None:
    """Load call logs (Parquet, JSON Lines or CSV in the call-log contract)."""
    _ingest(paths, "calls", db, strict, fmt)


@group.command("accounts")
def accounts_command(
    paths: PathsArg,
    db: DbOption = DEFAULT_DB,
    strict: StrictOption = False,
    fmt: FormatOption = FileFormat.auto,
) -> None:
    """Load account exports; a later export updates accounts already stored."""
    _ingest(paths, "accounts", db, strict, fmt)


@group.command("spool")
def spool_command(
    directory: Annotated[
        Path, typer.Argument(help="The gateway's spool folder, or its segments/ folder.")
    ],
    db: DbOption = DEFAULT_DB,
    strict: StrictOption = False,
) -> None:
    """Load every closed gateway segment not loaded before, exactly once."""
    from ingest.loader import ingest_spool, spool_segments

    segments = spool_segments(directory)
    with _open(db) as wh:
        reports = _with_progress(
            segments, lambda advance: ingest_spool(wh, directory, on_bytes=advance)
        )
    _finish(reports, strict)


@group.command("status")
def status_command(
    db: DbOption = DEFAULT_DB,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table or json (csv is not offered here).")
    ] = OutputFormat.table,
) -> None:
    """Summarise the ingest ledger: files, rows, and quarantined rows by reason."""
    from ingest.ledger import ledger_summary

    with _open(db, read_only=True) as wh:
        summary = ledger_summary(wh)
    if output is OutputFormat.json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))
        return
    typer.echo(f"warehouse: {db}")
    for kind, totals in summary.kinds.items():
        typer.echo(
            f"{kind}: {summary.stored.get(kind, 0):,} stored; {totals.files:,} files, "
            f"{totals.rows_read:,} rows read, {totals.rows_loaded:,} loaded "
            f"({totals.rows_updated:,} updates), {totals.rows_duplicate:,} duplicates, "
            f"{totals.rows_quarantined:,} quarantined"
        )
    typer.echo(f"last load: {summary.last_loaded_at or 'never'}")
    if summary.quarantine_by_reason:
        typer.echo("quarantined rows by reason:")
        for reason, count in summary.quarantine_by_reason.items():
            typer.echo(f"  {count:>10,}  {reason}")


@group.command("quarantine")
def quarantine_command(
    db: DbOption = DEFAULT_DB,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 20,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Only rows quarantined for this reason.")
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="table, json or csv.")] = (
        OutputFormat.table
    ),
) -> None:
    """Show quarantined rows: the file, the line, why, and the row as written."""
    from ingest.ledger import quarantined_rows

    with _open(db, read_only=True) as wh:
        rows = quarantined_rows(wh, limit=limit, reason=reason)
    fields = ["batch_id", "kind", "source_path", "line", "reason", "raw"]
    if output is OutputFormat.json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
    elif output is OutputFormat.csv:
        writer = csv.DictWriter(sys.stdout, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif not rows:
        typer.echo("no quarantined rows")
    else:
        for row in rows:
            raw = (row["raw"] or "").replace("\n", "\\n")
            raw = raw if len(raw) <= 100 else raw[:97] + "..."
            typer.echo(f"{row['source_path']}:{row['line']}  {row['reason']}\n    {raw}")


# -- helpers ----------------------------------------------------------------------------------


def _open(db: Path, *, read_only: bool = False) -> Warehouse:
    from ingest.exceptions import IngestError
    from ingest.warehouse import Warehouse

    if read_only and not db.exists():
        raise IngestError(f"no warehouse at {db}; load something first (distillguard ingest ...)")
    return Warehouse.open(db, read_only=read_only)


def _ingest(paths: Sequence[Path], kind: Kind, db: Path, strict: bool, fmt: FileFormat) -> None:
    from ingest.loader import ingest_files

    with _open(db) as wh:
        reports = _with_progress(
            paths, lambda advance: ingest_files(wh, paths, kind, fmt.value, on_bytes=advance)
        )
    _finish(reports, strict)


def _with_progress(
    paths: Sequence[Path], work: Callable[[Callable[[int], None]], list[IngestReport]]
) -> list[IngestReport]:
    """Run ``work`` with a byte-counting progress bar (drawn only on a terminal)."""
    from distillguard.progress import progress_bar

    total = sum(p.stat().st_size for p in paths if p.is_file())
    with progress_bar() as progress:
        task = progress.add_task("ingest", total=total or None)
        reports = work(lambda n: progress.advance(task, n))
        progress.update(task, completed=total)
    return reports


def _finish(reports: Sequence[IngestReport], strict: bool) -> None:
    """Print one line per file and the totals; exit 2 if a file was refused, 1 if ``strict``
    and rows were quarantined."""
    for r in reports:
        if r.status == "refused":
            typer.echo(f"error: {r.error}", err=True)
        elif r.status == "already_loaded":
            typer.echo(f"{r.path}: already loaded (batch {r.batch_id}, {r.rows_read:,} rows)")
        else:
            typer.echo(
                f"{r.path}: read {r.rows_read:,}, loaded {r.rows_loaded:,}"
                + (f" ({r.rows_updated:,} updates)" if r.rows_updated else "")
                + f", duplicates skipped {r.rows_duplicate:,}, quarantined "
                f"{r.rows_quarantined:,} ({r.seconds:.1f} s)"
            )
    loaded = [r for r in reports if r.status != "refused"]
    refused = len(reports) - len(loaded)
    quarantined = sum(r.rows_quarantined for r in reports if r.status == "loaded")
    typer.echo(
        f"total: {len(reports)} file(s), read {sum(r.rows_read for r in loaded):,}, "
        f"loaded {sum(r.rows_loaded for r in reports if r.status == 'loaded'):,}, "
        f"duplicates skipped {sum(r.rows_duplicate for r in loaded):,}, "
        f"quarantined {quarantined:,}" + (f", refused {refused} file(s)" if refused else "")
    )
    if refused:
        raise typer.Exit(2)
    if strict and quarantined:
        typer.echo(
            f"error: {quarantined:,} row(s) quarantined (--strict); "
            "see `distillguard ingest quarantine`",
            err=True,
        )
        raise typer.Exit(1)
