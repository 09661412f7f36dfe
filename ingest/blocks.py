"""Cut text files into blocks of whole lines (JSON Lines) or records (CSV), vectorised.

Each block becomes an Arrow table that keeps every line's 1-based number in the file, so a bad
row can be reported by line without a Python loop per row: newlines and quotes are found with
numpy over the block's bytes, and the lines are zero-copy views into that block.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingest.exceptions import UnreadableInput

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


def _blocks(stream: BinaryIO, block_bytes: int, on_bytes: OnBytes | None) -> Iterator[bytes]:
    """The stream's bytes in blocks, less a UTF-8 byte-order mark at its start (Excel adds one)."""
    first = True
    while block := stream.read(block_bytes):
        if on_bytes is not None:
            on_bytes(len(block))
        if first:
            first = False
            block = block.removeprefix(BOM)
            if not block:
                continue
        yield block


def jsonl_blocks(
    stream: BinaryIO, block_bytes: int, on_bytes: OnBytes | None = None
) -> Iterator[pa.Table]:
    """Tables ``(line BIGINT, raw, brace BOOLEAN)`` of the non-blank lines, in order.

    ``raw`` is the line without trailing whitespace: a string column, or binary for a block that
    holds bytes that are not UTF-8 (SQL then flags those lines). ``brace`` says whether the first
    non-blank character is ``{`` (a valid JSON text that starts so is an object).
    """
    first_line = 1
    tail = b""
    for block in _blocks(stream, block_bytes, on_bytes):
        data = tail + block
        ends = np.flatnonzero(np.frombuffer(data, np.uint8) == NEWLINE) + 1
        if len(ends) == 0:
            tail = data
            continue
        cut = int(ends[-1])
        tail = data[cut:]
        yield _line_table(data[:cut], ends, first_line)
        first_line += len(ends)
    if tail:
        yield _line_table(tail, np.array([len(tail)], np.int64), first_line)


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

    def __init__(self, stream: BinaryIO, block_bytes: int, name: str) -> None:
        self.stream = stream
        self.block_bytes = block_bytes
        self.name = name
        self.columns: list[str] = []

    def blocks(self, on_bytes: OnBytes | None = None) -> Iterator[CsvBlock]:
        first_line = 1
        carry = b""
        header_done = False
        chunks = _blocks(self.stream, self.block_bytes, on_bytes)
        for block in chunks:
            data = carry + block
            ends = _record_ends(data)
            if len(ends) == 0:
                carry = data
                continue
            cut = int(ends[-1])
            carry = data[cut:]
            if not header_done:
                data, ends, first_line = self._take_header(data[:cut], ends)
                header_done = True
                if len(ends) == 0:
                    continue
                cut = int(ends[-1])
            yield self._block(data[:cut], ends, first_line)
            first_line += int(np.count_nonzero(np.frombuffer(data[:cut], np.uint8) == NEWLINE))
        if carry:
            ends = np.array([len(carry)], np.int64)
            if not header_done:
                carry, ends, first_line = self._take_header(carry, ends)
                header_done = True
            if len(ends):
                yield self._block(carry, ends, first_line)
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


def _quote_parity(raw: np.ndarray) -> np.ndarray:
    """For each byte, whether an odd number of quote characters precede it (inside quotes)."""
    quotes = np.cumsum(raw == QUOTE, dtype=np.int64)
    return ((quotes - (raw == QUOTE)) & 1).astype(bool)


def _record_ends(data: bytes) -> np.ndarray:
    """Offsets just past each newline that ends a record (one outside quotes)."""
    raw = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(raw == NEWLINE)
    if len(newlines) == 0:
        return newlines
    inside = _quote_parity(raw)[newlines]
    return (newlines[~inside] + 1).astype(np.int64)


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
    commas = commas[~_quote_parity(raw)[commas]]
    per_record = np.searchsorted(commas, ends) - np.searchsorted(commas, starts)
    return per_record.astype(np.int64) + 1
