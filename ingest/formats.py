"""Which format a file is in, and reading its bytes (plain or gzip) and content hash.

Formats are told by the name (``.parquet``, ``.jsonl``/``.ndjson``, ``.csv``, each text format
also as ``.gz``); a name that says nothing is sniffed (Parquet's ``PAR1`` magic, a leading ``{``
for JSON Lines) and otherwise refused, so a file is never read as something it is not.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from pathlib import Path
from typing import BinaryIO, Literal, cast, get_args

from ingest.exceptions import UnreadableInput

Format = Literal["parquet", "jsonl", "csv"]

CSV_FIELD_LIMIT = 10_000_000
"""Characters a CSV field may hold when prompt sets are read (Python's default, 131,072, refuses
real ones: one prompt of awesome-chatgpt-prompts is 144,260 characters)."""
FORMATS: tuple[Format, ...] = get_args(Format)

_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
}
_HASH_BLOCK = 8 << 20


def allow_long_csv_fields() -> None:
    """Raise Python's process-wide CSV field limit to :data:`CSV_FIELD_LIMIT` (never lower it)."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))


def is_gzip(path: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with path.open("rb") as f:
        return f.read(2) == b"\x1f\x8b"


def detect_format(path: Path, requested: str | None = None) -> Format:
    """The format to read ``path`` as: ``requested`` unless it is ``None`` or ``"auto"``."""
    if requested not in (None, "auto"):
        if requested not in FORMATS:
            raise UnreadableInput(f"unknown format {requested!r}; choose one of {FORMATS}")
        return requested
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    with open_bytes(path) as stream:
        head = stream.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip().startswith(b"{"):
        return "jsonl"
    raise UnreadableInput(
        f"{path}: cannot tell its format from the name or the first bytes; "
        "name it .parquet, .jsonl or .csv, or pass --format"
    )


def open_bytes(path: Path) -> BinaryIO:
    """The file's content as a binary stream, decompressed when it is gzip."""
    if is_gzip(path):
        return cast(BinaryIO, gzip.open(path, "rb"))
    return path.open("rb")


def stored_position(stream: BinaryIO) -> int | None:
    """How many bytes of the file as stored ``stream`` has consumed (for gzip, compressed bytes,
    which is what a file's size counts); ``None`` for a stream that cannot tell."""
    raw = stream.fileobj if isinstance(stream, gzip.GzipFile) else stream
    try:
        return int(raw.tell())
    except (AttributeError, OSError, ValueError):  # a pipe, a closed stream
        return None


def sha256_file(path: Path) -> str:
    """The SHA-256 of the file's bytes as stored (compressed files hash compressed)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
