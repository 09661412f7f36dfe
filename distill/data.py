"""Examples for a job: prompts (with a reference answer or an earlier generation when present).

Readable files: JSON Lines, a JSON list, CSV and plain text (one prompt per line). A record's
prompt is its first present field among ``prompt``, ``question``, ``instruction``, ``text``,
``input``, ``turns`` (the first turn), SVAMP's ``Body`` + ``Question``, or the first Human
turn of an hh-rlhf ``chosen`` dialogue. A reference answer is
``answer`` / ``Answer`` / ``reference``; an earlier generation is ``response``. The record's other
text (later dialogue turns, reference solutions, code, at least three words each) is kept as the
example's ``context``: an encoder can learn from it, but it is never a prompt of its own.

The train / eval split is by a hash of the prompt text, so the same prompt always lands on the
same side whatever the file order (benchmarks recompute the held-out set from the job's data).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from distill.exceptions import DataError
from distill.spec import DataEntry
from ingest.formats import allow_long_csv_fields

_PROMPT_KEYS = ("prompt", "question", "instruction", "text", "input")
_ANSWER_KEYS = ("answer", "Answer", "reference")
_TURN = re.compile(r"\n\n(?:Human|Assistant):")
_MIN_CONTEXT_WORDS = 3


@dataclass(frozen=True)
class Example:
    """One training or evaluation example."""

    prompt: str
    reference: str | None = None
    response: str | None = None
    source: str = ""
    context: tuple[str, ...] = ()


def _prompt_of(record: dict[str, Any]) -> str | None:
    if "Body" in record and "Question" in record:
        return f"{record['Body']} {record['Question']}".strip()
    for key in _PROMPT_KEYS:
        value = record.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    turns = record.get("turns")
    first = turns[0] if isinstance(turns, list) and turns else None
    if isinstance(first, dict):
        first = first.get("content")
    if isinstance(first, str) and first.strip():
        return first.strip()
    dialogue = record.get("chosen")
    if isinstance(dialogue, str) and "Human:" in dialogue:
        return dialogue.split("Human:", 1)[1].split("\n\nAssistant:", 1)[0].strip() or None
    return None


def _texts_in(value: Any) -> Iterator[str]:
    """Every string of at least three words in ``value``, dialogues split into their turns."""
    if isinstance(value, str):
        for part in _TURN.split(value) if "\n\nHuman:" in value else [value]:
            if len(part.split()) >= _MIN_CONTEXT_WORDS:
                yield part.strip()
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts_in(item)


def _context(record: dict[str, Any], prompt: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for t in _texts_in(record) if t != prompt))


def _example(record: dict[str, Any], source: str) -> Example | None:
    prompt = _prompt_of(record)
    if prompt is None:
        return None
    answer = next((record[k] for k in _ANSWER_KEYS if record.get(k) not in (None, "")), None)
    response = record.get("response")
    return Example(
        prompt=prompt,
        reference=None if answer is None else str(answer),
        response=response if isinstance(response, str) and response else None,
        source=source,
        context=_context(record, prompt),
    )


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The file's records; a file that is not UTF-8 text, or not readable as its format, raises
    :class:`DataError` naming the file and the line."""
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".csv", ".txt"):
        raise DataError(f"{path}: unsupported data file type {suffix or '(none)'}")
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            yield from _parse(path, suffix, handle)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}:{_undecodable_line(path)}: not UTF-8 text ({exc.reason}); is it a binary file?"
        ) from exc


def _parse(path: Path, suffix: str, handle: TextIO) -> Iterator[dict[str, Any]]:
    if suffix == ".jsonl":
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc
            if isinstance(record, dict):
                yield record
    elif suffix == ".json":
        try:
            body = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}:{exc.lineno}: not valid JSON: {exc.msg}") from exc
        if not isinstance(body, list):
            raise DataError(f"{path}: a .json data file must hold a list of records")
        yield from (r for r in body if isinstance(r, dict))
    elif suffix == ".csv":
        allow_long_csv_fields()
        reader = csv.DictReader(handle)
        try:
            yield from reader
        except csv.Error as exc:
            stopped = reader.reader.line_num  # where reading stopped (DictReader's lags a row)
            raise DataError(f"{path}:{stopped}: not readable as CSV: {exc}") from exc
    else:
        yield from ({"prompt": line} for line in handle if line.strip())


def _undecodable_line(path: Path) -> int:
    """The line of the file's first byte sequence that is not UTF-8 (read in blocks: a binary
    file may have no line breaks at all)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:  # exc.object: bytes held back, then this block
                return line + exc.object[: exc.start].count(b"\n")
            line += block.count(b"\n")
    return line


def load_entry(entry: DataEntry) -> list[Example]:
    """The examples of one data entry; a missing file or one without prompts is an error."""
    if entry.path is None:
        raise DataError(f"data entry {entry.label}: training needs a path to read")
    path = Path(entry.path)
    if not path.is_file():
        raise DataError(f"data entry {entry.label}: {path} does not exist")
    examples = [e for e in (_example(r, entry.label) for r in _records(path)) if e is not None]
    if not examples:
        raise DataError(
            f"{path}: no record has a prompt field ({', '.join(_PROMPT_KEYS)}, turns or "
            "Body + Question)"
        )
    return examples


def load_examples(entries: list[DataEntry], max_chars: int | None = None) -> list[Example]:
    """Every entry's examples, exact duplicate prompts removed (first one kept), in file order."""
    if not entries:
        raise DataError("the job names no data: add at least one entry under data")
    seen: set[str] = set()
    out = []
    for entry in entries:
        for example in load_entry(entry):
            prompt = example.prompt[:max_chars] if max_chars else example.prompt
            if prompt not in seen:
                seen.add(prompt)
                out.append(example if prompt == example.prompt else _replace(example, prompt))
    return out


def _replace(example: Example, prompt: str) -> Example:
    return Example(prompt, example.reference, example.response, example.source, example.context)


def is_held_out(prompt: str, eval_fraction: float) -> bool:
    """Whether a prompt belongs to the evaluation split (a stable hash of its text)."""
    digest = hashlib.sha256(prompt.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction


def split(examples: list[Example], eval_fraction: float) -> tuple[list[Example], list[Example]]:
    """``(train, eval)`` by :func:`is_held_out`."""
    train = [e for e in examples if not is_held_out(e.prompt, eval_fraction)]
    held = [e for e in examples if is_held_out(e.prompt, eval_fraction)]
    if not train:
        raise DataError(
            f"no training examples left after holding out eval_fraction={eval_fraction}"
        )
    return train, held


def data_sha256(examples: list[Example]) -> str:
    """A hash of the examples' content, to tie caches and provenance to the data."""
    digest = hashlib.sha256()
    for e in examples:
        record = [e.prompt, e.reference, e.response, list(e.context)]
        digest.update(json.dumps(record).encode("utf-8"))
    return digest.hexdigest()


def teacher_identity(teacher: str) -> str:
    """What makes a teacher's outputs its own: an API teacher's ``api:provider/model`` name, or a
    local teacher's resolved path with the name, size and modification time of each of its files
    (retrained or replaced weights are another teacher; stat, not hashing gigabytes, per run)."""
    if teacher.startswith("api:"):
        return teacher
    root = Path(teacher).resolve()
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    stats = []
    for path in files:
        stat = path.stat()
        stats.append([path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime_ns])
    return json.dumps([str(root), stats])


def teacher_cache_key(teacher: str, **settings: object) -> str:
    """A short key for a cache of teacher outputs: the teacher's identity and the settings that
    shape the outputs (which data they are for, the caller keys)."""
    blob = json.dumps([teacher_identity(teacher), settings], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]
