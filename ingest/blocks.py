"""Cut text files into blocks of whole lines (JSON Lines) or records (CSV), vectorised.

Each block becomes an Arrow table that keeps every line's 1-based number in the file, so a bad
row can be reported by line without a Python loop per row: newlines and quotes are found with
numpy over the block's bytes, and the lines are zero-copy views into that block.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingest.exceptions import UnreadableInput
from ingest.formats import stored_position

NEWLINE = 0x0A
QUOTE = 0x22
COMMA = 0x2C
BOM = b"\xef\xbb\xbf"

OnBytes = Callable[[int], None]


def _text_array(data: bytes, offsets: np.ndarray) -> pa.Array:
    """Lines ``data[offsets[i]:offsets[i+1]]`` as UTF-8 strings, or as binary if not valid UTF-8."""
    count = len(offsets) - 1
    buffers = [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data)]
    text = pa.LargeStringArray.from_buffers(count, buffers[1], buffers[2])
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return pa.LargeBinaryArray.from_buffers(pa.large_binary(), count, buffers)
    return text


def _blocks(
    stream: BinaryIO, block_bytes: int, on_bytes: OnBytes | None
) -> Iterator[tuple[int, bytes]]:
    """``(offset, block)``: the stream's bytes in blocks, each with the offset of its first byte,
    less a UTF-8 byte-order mark at its start (Excel adds one).

    ``on_bytes`` is told how much of the file *as stored* each block consumed: for a gzip file
    the compressed bytes, so that progress counts toward the file's size on disk.
    """
    offset = 0
    stored = stored_position(stream) if on_bytes is not None else None
    while block := stream.read(block_bytes):
        if on_bytes is not None:
            stored = _report(stream, on_bytes, stored, len(block))
        start, offset = offset, offset + len(block)
        if start == 0 and block.startswith(BOM):
            start, block = len(BOM), block[len(BOM) :]
            if not block:
                continue
        yield start, block
    if on_bytes is not None:
        _report(stream, on_bytes, stored, 0)  # a gzip trailer read at the end


def _report(stream: BinaryIO, on_bytes: OnBytes, before: int | None, read: int) -> int | None:
    """Tell ``on_bytes`` how far the stored file was read since ``before``; the new position."""
    after = stored_position(stream)
    step = read if before is None or after is None else after - before
    if step > 0:
        on_bytes(step)
    return after


@dataclass
class _Unended:
    """The start of a record whose end has not been read yet, kept as pieces (joined once).

    A record may hold at most ``limit`` bytes: past that the file is refused, so a file without
    line breaks (or with a quote left open) cannot fill memory.
    """

    what: str
    limit: int
    hint: str
    line: int = 1
    offset: int = 0
    pieces: list[bytes] = field(default_factory=list)
    size: int = 0

    def _refuse(self, line: int, offset: int) -> UnreadableInput:
        return UnreadableInput(
            f"{self.what} {line} (from byte offset {offset}) runs past {self.limit:,} bytes "
            f"(INGEST_MAX_RECORD_BYTES); {self.hint}"
        )

    def restart(self, line: int, offset: int, piece: bytes) -> None:
        """A new record starts at ``line`` / ``offset`` with ``piece``."""
        self.line, self.offset, self.pieces, self.size = line, offset, [], 0
        self.add(piece)

    def add(self, piece: bytes) -> None:
        if piece:
            self.pieces.append(piece)
            self.size += len(piece)
        if self.size > self.limit:
            raise self._refuse(self.line, self.offset)

    def joined(self, end: bytes) -> bytes:
        """The pending bytes followed by ``end``."""
        return b"".join([*self.pieces, end]) if self.pieces else end

    def check(self, data: bytes, ends: np.ndarray) -> None:
        """Refuse a record of ``data`` (starting at ``self.offset``) longer than the limit."""
        lengths = np.diff(ends, prepend=0)
        over = np.flatnonzero(lengths > self.limit)
        if len(over):
            start = int(ends[over[0] - 1]) if over[0] else 0
            line = self.line + data[:start].count(b"\n")
            raise self._refuse(line, self.offset + start)


def _whole_records(
    blocks: Iterator[tuple[int, bytes]],
    unended: _Unended,
    find_ends: Callable[[bytes], np.ndarray],
) -> Iterator[tuple[bytes, np.ndarray, int]]:
    """Runs of whole records as ``(data, record ends in data, line of the first)``.

    ``find_ends`` gives the offsets just past each record end in one block. The bytes after a
    block's last end are carried into the next run (bounded by ``unended``); whatever is carried
    at the end of the stream comes last, as one record.
    """
    for offset, block in blocks:
        ends = find_ends(block)
        if len(ends) == 0:
            unended.add(block)
            continue
        cut = int(ends[-1])
        data = unended.joined(block[:cut])
        ends += len(data) - cut
        unended.check(data, ends)
        first_line = unended.line
        unended.restart(first_line + data.count(b"\n"), offset + cut, block[cut:])
        yield data, ends, first_line
    if unended.size:
        tail = unended.joined(b"")
        yield tail, np.array([len(tail)], np.int64), unended.line


def jsonl_blocks(
    stream: BinaryIO,
    block_bytes: int,
    on_bytes: OnBytes | None = None,
    *,
    max_record_bytes: int,
) -> Iterator[pa.Table]:
    """Tables ``(line BIGINT, raw, brace BOOLEAN)`` of the non-blank lines, in order.

    ``raw`` is the line without trailing whitespace: a string column, or binary for a block that
    holds bytes that are not UTF-8 (SQL then flags those lines). ``brace`` says whether the first
    non-blank character is ``{`` (a valid JSON text that starts so is an object). A line longer
    than ``max_record_bytes`` (its line break included) refuses the file. Each byte is searched
    for line breaks once, however many blocks a line runs across.
    """
    unended = _Unended("line", max_record_bytes, "is the file truncated or without line breaks?")
    blocks = _blocks(stream, block_bytes, on_bytes)
    for data, ends, first_line in _whole_records(blocks, unended, _line_ends):
        yield _line_table(data, ends, first_line)


def _line_ends(block: bytes) -> np.ndarray:
    return np.flatnonzero(np.frombuffer(block, np.uint8) == NEWLINE) + 1


def _line_table(data: bytes, ends: np.ndarray, first_line: int) -> pa.Table:
    text = _text_array(data, np.concatenate([np.zeros(1, np.int64), ends.astype(np.int64)]))
    keep = pc.invert(pc.match_substring_regex(text, r"^[ \t\r\n]*$"))  # blank lines: not rows
    brace = pc.match_substring_regex(text, r"^[ \t\r]*\{")
    if pa.types.is_large_string(text.type):
        text = pc.utf8_rtrim_whitespace(text)
    table = pa.table(
        {
            "line": np.arange(first_line, first_line + len(ends), dtype=np.int64),
            "raw": text,
            "brace": brace,
        }
    )
    return table if keep.false_count == 0 else table.filter(keep)


@dataclass(frozen=True)
class CsvBlock:
    """One block of CSV records: the well-formed ones parsed, the malformed ones kept raw."""

    rows: pa.Table
    """``__line`` (the record's first line) and one string column per header field."""
    bad: pa.Table
    """``line``, ``raw`` (the record's text) and ``fields`` (its field count), malformed ones."""


class CsvReader:
    """Reads a CSV file with a header in blocks of whole records, numbering them by line.

    Records are split where a newline falls outside quotes (an even number of quote characters
    before it), so quoted fields may hold newlines. A record whose field count differs from the
    header's is malformed and reported, not dropped. Unquoted empty fields are NULL, quoted empty
    fields ``""`` are empty strings.
    """

    def __init__(
        self, stream: BinaryIO, block_bytes: int, name: str, *, max_record_bytes: int
    ) -> None:
        self.stream = stream
        self.block_bytes = block_bytes
        self.name = name
        self.max_record_bytes = max_record_bytes
        self.columns: list[str] = []

    def blocks(self, on_bytes: OnBytes | None = None) -> Iterator[CsvBlock]:
        """The records in blocks; a record longer than ``max_record_bytes`` refuses the file.

        Each byte is searched for newlines and quotes once, however many blocks a record runs
        across.
        """
        unended = _Unended(
            f"{self.name}: the record on line", self.max_record_bytes, "is a quote left open?"
        )
        inside = False  # whether the bytes read so far leave a quote open

        def record_ends(block: bytes) -> np.ndarray:
            nonlocal inside
            ends, inside = _record_ends(block, inside)
            return ends

        header_done = False
        blocks = _blocks(self.stream, self.block_bytes, on_bytes)
        for data, ends, first_line in _whole_records(blocks, unended, record_ends):
            if not header_done:
                data, ends, first_line = self._take_header(data, ends)
                header_done = True
                if len(ends) == 0:
                    continue
            yield self._block(data, ends, first_line)
        if not header_done:
            raise UnreadableInput(f"{self.name}: the CSV file is empty (no header line)")

    def _take_header(self, data: bytes, ends: np.ndarray) -> tuple[bytes, np.ndarray, int]:
        header_end = int(ends[0])
        try:
            header_text = data[:header_end].decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise UnreadableInput(f"{self.name}: the CSV header is not UTF-8 text") from exc
        self.columns = next(csv.reader(io.StringIO(header_text)), [])
        if not self.columns or len(set(self.columns)) != len(self.columns):
            raise UnreadableInput(
                f"{self.name}: the CSV header must name each column once, got {self.columns!r}"
            )
        lines_in_header = data[:header_end].count(b"\n")
        return data[header_end:], ends[1:] - header_end, 1 + lines_in_header

    def _block(self, data: bytes, ends: np.ndarray, first_line: int) -> CsvBlock:
        raw = np.frombuffer(data, np.uint8)
        starts = np.concatenate([np.zeros(1, np.int64), ends[:-1].astype(np.int64)])
        newlines = np.flatnonzero(raw == NEWLINE)
        lines = first_line + np.searchsorted(newlines, starts)
        blank = _content_ends(raw, starts, ends) == starts  # empty lines are not rows
        fields = _field_counts(raw, starts, ends)
        good = (fields == len(self.columns)) & ~blank
        bad = ~good & ~blank
        if bad.any() or blank.any():  # hand the parser only the well-formed records
            keep = np.repeat(good, (ends - starts).astype(np.int64))
            rows = self._parse(raw[: len(keep)][keep].tobytes(), int(np.count_nonzero(good)))
        else:
            rows = self._parse(data, len(ends))
        rows = rows.add_column(0, "__line", pa.array(lines[good], pa.int64()))
        offsets = np.concatenate([np.zeros(1, np.int64), ends.astype(np.int64)])
        texts = pa.LargeBinaryArray.from_buffers(
            pa.large_binary(),
            len(ends),
            [None, pa.py_buffer(offsets), pa.py_buffer(data)],
        )
        bad_idx = pa.array(np.flatnonzero(bad))
        bad_table = pa.table(
            {
                "line": pa.array(lines[bad], pa.int64()),
                "raw": texts.take(bad_idx),
                "fields": pa.array(fields[bad], pa.int64()),
            }
        )
        return CsvBlock(rows, bad_table)

    def _parse(self, data: bytes, expected: int) -> pa.Table:
        names = self.columns
        if expected == 0:
            return pa.table({n: pa.array([], pa.string()) for n in names})
        try:
            table = pacsv.read_csv(
                pa.BufferReader(data),
                read_options=pacsv.ReadOptions(column_names=names, block_size=1 << 26),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names},
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowInvalid as exc:
            raise UnreadableInput(f"{self.name}: not a readable CSV file: {exc}") from exc
        if table.num_rows != expected:
            raise UnreadableInput(
                f"{self.name}: its quoting is inconsistent (a quote inside an unquoted field?); "
                f"found {expected} records but the CSV parser read {table.num_rows}"
            )
        return table


def _record_ends(data: bytes, inside: bool = False) -> tuple[np.ndarray, bool]:
    """Offsets just past each newline that ends a record (one outside quotes), and whether a
    quote is open at the end; ``inside``: whether one is open before ``data``."""
    raw = np.frombuffer(data, np.uint8)
    quotes = np.flatnonzero(raw == QUOTE)
    newlines = np.flatnonzero(raw == NEWLINE)
    quoted = (np.searchsorted(quotes, newlines) + inside) & 1  # odd: inside quotes
    return (newlines[quoted == 0] + 1).astype(np.int64), bool((len(quotes) + inside) & 1)


def _content_ends(raw: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each record's end without its line terminator (``\\n`` or ``\\r\\n``)."""
    content = ends.astype(np.int64)
    for byte in (NEWLINE, 0x0D):
        last = np.maximum(content - 1, 0)
        content = content - ((content > starts) & (raw[last] == byte))
    return content


def _field_counts(raw: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many fields each record ``raw[starts[i]:ends[i]]`` has (commas outside quotes + 1)."""
    commas = np.flatnonzero(raw == COMMA)
    commas = commas[(np.searchsorted(np.flatnonzero(raw == QUOTE), commas) & 1) == 0]
    per_record = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
    return per_record.astype(np.int64) + 1
