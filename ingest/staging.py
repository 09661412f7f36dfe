"""Staging: read a file of any format into one relation the loader can write from.

Parquet is staged as a view over the file itself. JSON Lines and CSV are parsed block by block
(vectorised: :mod:`ingest.blocks` cuts the blocks, DuckDB parses them) into Parquet files in a
scratch folder, and the stage is a view over those, so memory stays bounded by the block size
however large the file. Either way the stage has the columns described in :mod:`ingest.sql`.
A file that is not what it claims raises :class:`UnreadableInput` here, before anything is
written to the warehouse.
"""

# ruff: noqa: S608  -- SQL text is built here from contract allow-lists and sql.ident()-quoted
# names; every value is bound as a $parameter.

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import pyarrow as pa

from ingest import sql
from ingest.blocks import CsvReader, OnBytes, jsonl_blocks
from ingest.contract import Column
from ingest.exceptions import UnreadableInput
from ingest.formats import Format, open_bytes
from ingest.settings import IngestSettings
from ingest.warehouse import Warehouse

BLOCK = "__ingest_block"
MALFORMED_JSON = "malformed JSON line"
INVALID_UTF8 = "invalid UTF-8"
MALFORMED_CSV = "malformed CSV record (wrong number of fields)"


def first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def row_count(cursor: duckdb.DuckDBPyConnection) -> int:
    """The row count a DML statement returns."""
    rows = cursor.fetchall()
    return int(rows[0][0]) if rows else 0


def drop_stage(wh: Warehouse) -> None:
    """Drop the stage (a view over Parquet, a temp table otherwise) and the exclusions."""
    for name, types in ((sql.STAGE, ("VIEW", "TABLE")), (sql.EXCLUDED, ("TABLE",))):
        for kind in types:
            with suppress(duckdb.CatalogException):
                wh.execute(f"DROP {kind} IF EXISTS {name}")
    with suppress(duckdb.Error):
        wh.con.unregister(BLOCK)


def stage(
    wh: Warehouse,
    source: Path,
    columns: tuple[Column, ...],
    fmt: Format,
    on_bytes: OnBytes | None,
    settings: IngestSettings,
    scratch: Path,
) -> None:
    """Create the stage of ``source`` (read as ``fmt``) as ``sql.STAGE``."""
    try:
        if fmt == "parquet":
            _stage_parquet(wh, source, columns)
            if on_bytes is not None:
                on_bytes(source.stat().st_size)
            return
        with open_bytes(source) as stream:
            if fmt == "jsonl":
                blocks = jsonl_blocks(
                    stream,
                    settings.block_bytes,
                    on_bytes,
                    max_record_bytes=settings.max_record_bytes,
                )
                written = _stage_jsonl(wh, source, columns, blocks, scratch)
            else:
                reader = CsvReader(
                    stream,
                    settings.block_bytes,
                    str(source),
                    max_record_bytes=settings.max_record_bytes,
                )
                written = _stage_csv(wh, source, columns, reader, on_bytes, scratch)
        if not written:
            _empty_stage(wh, columns)
            return
        glob = sql.literal(sql.file_pattern(str(scratch)) + "/*.parquet")  # views bind no $params
        wh.execute(
            f"CREATE TEMP VIEW {sql.STAGE} AS "
            f"SELECT * FROM read_parquet({glob}, union_by_name = true)"
        )
        if fmt == "jsonl":
            _check_fields_present(wh, source, columns)
    except UnreadableInput as exc:
        message = str(exc)
        if not message.startswith(str(source)):
            message = f"{source}: {message}"
        raise UnreadableInput(message) from exc


@contextmanager
def _registered(wh: Warehouse, table: pa.Table) -> Iterator[None]:
    """``table`` visible to SQL as ``__ingest_block`` for the duration of the block."""
    wh.con.register(BLOCK, table)
    try:
        yield
    finally:
        with suppress(duckdb.Error):  # an aborted transaction refuses even this
            wh.con.unregister(BLOCK)


def _copy(wh: Warehouse, select: str, target: Path) -> int:
    """Write ``select`` to a Parquet file; the number of rows written."""
    return row_count(
        wh.execute(f"COPY ({select}) TO $target (FORMAT parquet)", {"target": str(target)})
    )


def _require_columns(source: Path, columns: tuple[Column, ...], present: Iterable[str]) -> None:
    found = set(present)
    missing = [c.name for c in columns if c.required and c.name not in found]
    if missing:
        shown = ", ".join(n if n.isprintable() else repr(n) for n in sorted(found)[:30])
        raise UnreadableInput(
            f"{source}: missing required column(s) {', '.join(missing)} "
            f"(found: {shown[:300] or 'none'})"
        )


def _struct(names: Iterable[str]) -> str:
    fields = [f"{sql.ident(n)} := {sql.ident(n)}" for n in names]
    return f"struct_pack({', '.join(fields)})" if fields else "NULL"


def _struct_json(names: Iterable[str]) -> str:
    return f"to_json({_struct(names)})" if names else "NULL"


def _stage_parquet(wh: Warehouse, source: Path, columns: tuple[Column, ...]) -> None:
    # The stage is a view, and a view cannot hold a bound parameter: the path is a literal.
    path = sql.literal(sql.file_pattern(str(source)))
    scan = f"read_parquet({path}, file_row_number = true, binary_as_string = true)"
    try:
        described = wh.fetchall(f"DESCRIBE SELECT * FROM {scan}")
    except duckdb.Error as exc:
        raise UnreadableInput(f"{source}: not a readable Parquet file: {first_line(exc)}") from exc
    types = {str(r[0]): str(r[1]) for r in described if r[0] != "file_row_number"}
    _require_columns(source, columns, types)
    contract = {c.name for c in columns}
    extras = [n for n in types if n not in contract]
    select = sql.stage_select(
        columns,
        {n: t for n, t in types.items() if n in contract},
        scan,
        line="file_row_number + 1",
        raw=_struct(types),
        raw_is_struct=True,
        extra=_struct_json(extras),
    )
    wh.execute(f"CREATE TEMP VIEW {sql.STAGE} AS {select}")


def _jsonl_selects(columns: tuple[Column, ...], *, validate: bool) -> tuple[str, str]:
    """SELECTs staging one block of lines: the JSON objects, and the lines that are not.

    Without ``validate`` every line that starts with ``{`` is taken for an object; DuckDB's JSON
    functions then fail the statement on the first that is not valid JSON (they accept exactly
    what ``json_valid`` does), and the block is staged again with ``validate``.
    """
    paths = "[" + ", ".join(sql.literal("$." + c.name) for c in columns) + "]"
    drop = sql.literal("{" + ", ".join(f'"{c.name}": null' for c in columns) + "}")
    readable = "(raw IS NOT NULL AND brace" + (" AND json_valid(raw))" if validate else ")")
    objects = (
        f"(SELECT line, shown, json_extract_string(raw, {paths}) AS __v, "
        f"nullif(json_merge_patch(raw, {drop}), '{{}}') AS __x FROM {BLOCK} WHERE {readable})"
    )
    good = sql.stage_select(
        columns,
        {c.name: "VARCHAR" for c in columns},
        objects,
        refs={c.name: f"__v[{i + 1}]" for i, c in enumerate(columns)},
        line="line",
        raw="shown",
        extra="__x",
    )
    reason = (
        f"CASE WHEN raw IS NULL THEN {sql.literal(INVALID_UTF8)} "
        f"ELSE {sql.literal(MALFORMED_JSON)} END"
    )
    bad = sql.unreadable_select(
        columns,
        f"{BLOCK} WHERE NOT coalesce({readable}, false)",
        line="line",
        raw="shown",
        reason=reason,
    )
    return good, bad


def _stage_jsonl(
    wh: Warehouse,
    source: Path,
    columns: tuple[Column, ...],
    blocks: Iterator[pa.Table],
    scratch: Path,
) -> int:
    """Parse each block of lines into the scratch folder; the number of files written."""
    optimistic = _jsonl_selects(columns, validate=False)
    checked = _jsonl_selects(columns, validate=True)
    written = 0
    first = True
    for block in blocks:
        if block.num_rows == 0:
            continue
        if pa.types.is_large_binary(block.schema.field("raw").type):
            with _registered(wh, block):  # not all UTF-8: decode line by line in SQL
                block = wh.arrow(
                    "SELECT line, try(decode(raw)) AS raw, "
                    f"rtrim(CAST(raw AS VARCHAR), chr(10) || chr(13)) AS shown, brace FROM {BLOCK}"
                )
        else:
            block = block.append_column("shown", block.column("raw"))
        targets = (scratch / f"{written:06d}-rows.parquet", scratch / f"{written:06d}-bad.parquet")
        with _registered(wh, block):
            try:
                objects, others = (
                    _copy(wh, q, t) for q, t in zip(optimistic, targets, strict=True)
                )
            except (duckdb.InvalidInputException, duckdb.ConversionException):  # a malformed line
                objects, others = (_copy(wh, q, t) for q, t in zip(checked, targets, strict=True))
        written += 1
        if first and others and not objects:
            raise UnreadableInput(
                f"{source}: not JSON Lines: none of its first {others} line(s) is a JSON object"
            )
        first = False
    return written


def _check_fields_present(wh: Warehouse, source: Path, columns: tuple[Column, ...]) -> None:
    """Refuse a file in which no row has some required field (the wrong kind of file)."""
    required = [c for c in columns if c.required]
    counts = wh.fetchone(
        "SELECT count(*), "
        + ", ".join(
            f"count({sql.ident(c.name)}) + count(*) FILTER (WHERE __reason IN "
            f"({sql.literal(sql.bad_value_reason(c))}))"
            for c in required
        )
        + f" FROM {sql.STAGE} WHERE __reason IS NULL OR __reason NOT IN "
        f"({sql.literal(MALFORMED_JSON)}, {sql.literal(INVALID_UTF8)})"
    )
    if not counts or not counts[0]:
        return
    absent = [c.name for c, n in zip(required, counts[1:], strict=True) if not n]
    if absent:
        raise UnreadableInput(f"{source}: no row has the required field(s) {', '.join(absent)}")


def _stage_csv(
    wh: Warehouse,
    source: Path,
    columns: tuple[Column, ...],
    reader: CsvReader,
    on_bytes: OnBytes | None,
    scratch: Path,
) -> int:
    """Parse each block of records into the scratch folder; the number of blocks written."""
    written = 0
    good = ""
    bad = sql.unreadable_select(
        columns,
        BLOCK,
        line="line",
        raw="rtrim(coalesce(try(decode(raw)), CAST(raw AS VARCHAR)), chr(13) || chr(10))",
        reason=sql.literal(MALFORMED_CSV),
    )
    for block in reader.blocks(on_bytes):
        if not good:
            _require_columns(source, columns, reader.columns)
            contract = {c.name for c in columns}
            good = sql.stage_select(
                columns,
                {n: "VARCHAR" for n in reader.columns if n in contract},
                BLOCK,
                line="__line",
                raw=_struct(reader.columns),
                raw_is_struct=True,
                extra=_struct_json(n for n in reader.columns if n not in contract),
            )
        with _registered(wh, block.rows):
            _copy(wh, good, scratch / f"{written:06d}-rows.parquet")
        if block.bad.num_rows:
            with _registered(wh, block.bad):
                _copy(wh, bad, scratch / f"{written:06d}-bad.parquet")
        written += 1
    if not written:
        _require_columns(source, columns, reader.columns)
    return written


def _empty_stage(wh: Warehouse, columns: tuple[Column, ...]) -> None:
    """The stage of a file without rows (an empty JSON Lines file, a CSV header alone)."""
    nothing = "(SELECT NULL::BIGINT AS line) WHERE false"
    select = sql.stage_select(columns, {}, nothing, line="line", raw="NULL")
    wh.execute(f"CREATE TEMP TABLE {sql.STAGE} AS {select}")
