"""SQL for importing, built by pure functions (tested as text, run by the warehouse adapter).

An import reads a *source* relation (a Parquet scan, or a block of CSV records or JSON lines)
whose contract columns have whatever type the file gave them, and *stages* it: every contract
column cast to its warehouse type, plus ``__line`` (1-based line or row), ``__reason`` (why the row
breaks the contract, NULL when it does not), ``__raw`` (the row as written, for bad rows) and
``__extra`` (columns outside the contract, as JSON). The later steps only read the stage.

Identifiers come from the contracts in :mod:`ingest.contract` or are column names read from a
file, which :func:`ident` quotes; values are bound as ``$name`` parameters.
"""

# ruff: noqa: S608  -- SQL text is built here from contract allow-lists and sql.ident()-quoted
# names; every value is bound as a $parameter.

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from ingest.contract import ACCOUNT_COLUMNS, CALL_COLUMNS, Column
from ingest.exceptions import UnreadableInput

STAGE = "__ingest_stage"
EXCLUDED = "__ingest_excluded"

KINDS: dict[str, tuple[Column, ...]] = {"calls": CALL_COLUMNS, "accounts": ACCOUNT_COLUMNS}
KEYS: dict[str, str] = {"calls": "call_id", "accounts": "account_id"}
TABLES: dict[str, str] = {"calls": "calls", "accounts": "accounts"}

_INTEGER = re.compile(r"^(U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT))$")
_FLOAT = re.compile(r"^(FLOAT|DOUBLE|DECIMAL\(\d+,\s*\d+\))$")
_TIMESTAMP = re.compile(r"^(TIMESTAMP(_S|_MS|_NS)?|TIMESTAMP WITH TIME ZONE|DATE)$")
_EXPECTED = {
    "VARCHAR": "text",
    "BIGINT": "an integer",
    "INTEGER": "an integer",
    "DOUBLE": "a number",
    "TIMESTAMPTZ": "a timestamp",
}


def ident(name: str) -> str:
    """A column name quoted as a SQL identifier (names from files may hold anything)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal, for constants derived from the contracts only."""
    return "'" + text.replace("'", "''") + "'"


def file_pattern(path: str) -> str:
    """``path`` as a DuckDB file pattern that matches that one file.

    DuckDB's file readers read ``*``, ``?`` and ``[`` in a path as wildcards: ``a*b.parquet``
    would also read ``aZb.parquet``, and ``e[1].parquet`` would read ``e1.parquet`` instead.
    Each becomes a one-character class (``[*]``) that matches only itself.
    """
    return re.sub(r"([*?\[])", r"[\1]", path)


def _family(source_type: str) -> str:
    upper = source_type.upper()
    if upper == "VARCHAR":
        return "text"
    if _INTEGER.match(upper):
        return "integer"
    if _FLOAT.match(upper):
        return "float"
    if _TIMESTAMP.match(upper):
        return "timestamp"
    return "other"


def typed_expr(column: Column, ref: str, source_type: str) -> str:
    """Cast ``ref`` (of ``source_type``) to the column's warehouse type; NULL where it cannot.

    Text is parsed strictly: an integer column refuses ``"12.5"`` (it does not round), a timestamp
    must be ISO 8601 (naive means UTC: the session time zone is UTC) and finite. A source type
    that can never hold the column (a list for a token count, a number for a timestamp) refuses
    the whole file.
    """
    family, target = _family(source_type), column.sql_type
    if target == "VARCHAR" and family in ("text", "integer", "float", "timestamp"):
        return ref if family == "text" else f"CAST({ref} AS VARCHAR)"
    if target in ("BIGINT", "INTEGER"):
        if family == "integer":
            return f"TRY_CAST({ref} AS {target})"
        if family in ("text", "float"):
            whole = (
                f"TRY_CAST({ref} AS DOUBLE) = TRY_CAST({ref} AS {target})"
                if family == "text"
                else f"{ref} = trunc({ref})"
            )
            return f"CASE WHEN {whole} THEN TRY_CAST({ref} AS {target}) END"
    if target == "DOUBLE" and family in ("text", "integer", "float"):
        return f"TRY_CAST({ref} AS DOUBLE)"
    if target == "TIMESTAMPTZ":
        if family == "timestamp":
            return f"CAST({ref} AS TIMESTAMPTZ)"
        if family == "text":
            parsed = f"TRY_CAST({ref} AS TIMESTAMPTZ)"
            return f"CASE WHEN isfinite({parsed}) THEN {parsed} END"
    raise UnreadableInput(
        f"column {column.name} has type {source_type}; expected {_EXPECTED[target]}"
    )


# Required text that may legitimately be empty: a call whose body had no text (``GET /v1/models``,
# a body over the size limit) is still a call, and the gateway logs it.
EMPTY_ALLOWED = frozenset({"prompt"})


def _missing(column: Column, ref: str, source_type: str | None) -> str:
    if source_type is None:
        return "TRUE"
    if (
        source_type == "VARCHAR"
        and column.required
        and column.sql_type == "VARCHAR"
        and column.name not in EMPTY_ALLOWED
    ):
        return f"({ref} IS NULL OR {ref} = '')"
    return f"{ref} IS NULL"


def bad_value_reason(column: Column) -> str:
    """The quarantine reason for a value present in ``column`` that does not fit its type."""
    if column.sql_type == "TIMESTAMPTZ":
        return f"unparseable timestamp: {column.name}"
    return f"wrong type: {column.name} (expected {_EXPECTED[column.sql_type]})"


def stage_select(
    columns: Sequence[Column],
    source_types: Mapping[str, str],
    source: str,
    *,
    refs: Mapping[str, str] | None = None,
    line: str,
    raw: str,
    extra: str = "NULL",
    raw_is_struct: bool = False,
) -> str:
    """``SELECT`` the staged form of ``source`` (see the module docstring).

    ``source_types`` maps each contract column present in the source to its type there (absent
    optional columns become NULL); ``refs`` gives the expression that reads a column (default: its
    quoted name). With ``raw_is_struct``, ``raw`` is a struct rendered as JSON only for the rows
    that are quarantined, so good rows never pay for the rendering.
    """
    refs = refs or {}
    shown = "CAST(to_json(__raw) AS VARCHAR)" if raw_is_struct else "__raw"
    inner: list[str] = [
        f"{line} AS __line",
        f"{raw} AS __raw" if raw_is_struct else f"CAST({raw} AS VARCHAR) AS __raw",
        f"CAST({extra} AS JSON) AS __extra",
    ]
    reasons: list[str] = []
    wrong: list[str] = []
    outer: list[str] = []
    for i, column in enumerate(columns):
        source_type = source_types.get(column.name)
        ref = refs.get(column.name, ident(column.name))
        typed = "NULL" if source_type is None else typed_expr(column, ref, source_type)
        inner.append(f"CAST({typed} AS {column.sql_type}) AS __t{i}")
        inner.append(f"{_missing(column, ref, source_type)} AS __m{i}")
        outer.append(f"__t{i} AS {ident(column.name)}")
        if column.required:
            reasons.append(f"WHEN __m{i} THEN {literal('missing required field: ' + column.name)}")
        if source_type is None:
            continue
        message = bad_value_reason(column)
        wrong.append(f"WHEN NOT __m{i} AND __t{i} IS NULL THEN {literal(message)}")
    reason = "CASE " + " ".join(reasons + wrong) + " END"
    return (
        "SELECT __line, __reason, "
        f"CASE WHEN __reason IS NOT NULL THEN {shown} END AS __raw, "
        f"__extra, {', '.join(outer)} FROM (SELECT *, {reason} AS __reason FROM ("
        f"SELECT {', '.join(inner)} FROM {source}))"
    )


def unreadable_select(
    columns: Sequence[Column], source: str, *, line: str, raw: str, reason: str
) -> str:
    """``SELECT`` rows that could not be read at all (a malformed line) in the stage's shape."""
    typed = ", ".join(f"NULL::{c.sql_type} AS {ident(c.name)}" for c in columns)
    return (
        f"SELECT {line} AS __line, {reason} AS __reason, CAST({raw} AS VARCHAR) AS __raw, "
        f"NULL::JSON AS __extra, {typed} FROM {source}"
    )


def row_json(columns: Sequence[Column]) -> str:
    """A staged row as JSON text (its contract columns and extras), for the quarantine."""
    fields = ", ".join(f"{ident(c.name)} := {ident(c.name)}" for c in columns)
    return f"to_json(struct_pack({fields}, extra := __extra))"


def quarantine_bad_rows() -> str:
    """Move the rows that broke the contract into the quarantine."""
    return (
        "INSERT INTO quarantine (batch_id, kind, source_path, line, reason, raw) "
        f"SELECT $batch, $kind, $path, __line, __reason, __raw FROM {STAGE} "
        "WHERE __reason IS NOT NULL"
    )


def repeated_keys(key: str) -> str:
    """Keys repeated among all staged rows, valid or not: a superset of the keys repeated among
    valid rows that needs only the key column (validating every row to find them cost about three
    times as much). Usually empty, and then :func:`in_file_duplicates` need not run."""
    k = ident(key)
    return f"SELECT {k} FROM {STAGE} WHERE {k} IS NOT NULL GROUP BY {k} HAVING count(*) > 1"


def in_file_duplicates(key: str, *, candidates: bool = True) -> str:
    """Lines whose key repeats an earlier valid line of the same file (the first one wins).

    Without ``candidates`` (no key is repeated at all: :func:`repeated_keys` is empty) the table
    of exclusions is created empty, with the stage's types.
    """
    k = ident(key)
    if not candidates:
        return (
            f"CREATE TEMP TABLE {EXCLUDED} AS SELECT __line, 'in_file' AS why FROM {STAGE} LIMIT 0"
        )
    return (
        f"CREATE TEMP TABLE {EXCLUDED} AS SELECT __line, 'in_file' AS why FROM ("
        f"SELECT __line, row_number() OVER (PARTITION BY {k} ORDER BY __line) AS rn "
        f"FROM {STAGE} WHERE __reason IS NULL AND {k} IN ({repeated_keys(key)})"
        ") WHERE rn > 1"
    )


def quarantine_duplicates(kind: str) -> str:
    """Quarantine the in-file duplicates found by :func:`in_file_duplicates`."""
    key = KEYS[kind]
    return (
        "INSERT INTO quarantine (batch_id, kind, source_path, line, reason, raw) "
        f"SELECT $batch, $kind, $path, s.__line, {literal('duplicate ' + key + ' in file')}, "
        f"{row_json(KINDS[kind])} FROM {STAGE} s SEMI JOIN {EXCLUDED} e "
        "ON e.__line = s.__line AND e.why = 'in_file'"
    )


def already_stored(kind: str) -> str:
    """Add to the exclusions the valid lines whose key the warehouse already has.

    For calls they are duplicates; for accounts only the rows equal to the stored one are (the
    others update it).
    """
    key = ident(KEYS[kind])
    table = TABLES[kind]
    same = ""
    if kind == "accounts":
        same = "".join(
            f" AND t.{ident(c.name)} IS NOT DISTINCT FROM s.{ident(c.name)}"
            for c in ACCOUNT_COLUMNS
        )
        same += " AND t.extra IS NOT DISTINCT FROM s.__extra"
    return (
        f"INSERT INTO {EXCLUDED} SELECT s.__line, 'stored' FROM {STAGE} s "
        f"WHERE s.__reason IS NULL AND EXISTS (SELECT 1 FROM {table} t "
        f"WHERE t.{key} = s.{key}{same}) "
        f"AND NOT EXISTS (SELECT 1 FROM {EXCLUDED} e WHERE e.__line = s.__line)"
    )


def loadable(*, exclusions: bool) -> str:
    """The WHERE clause selecting the staged rows to write."""
    where = "s.__reason IS NULL"
    if exclusions:
        where += f" AND NOT EXISTS (SELECT 1 FROM {EXCLUDED} e WHERE e.__line = s.__line)"
    return where


def insert_rows(kind: str, *, exclusions: bool) -> str:
    """Write the loadable staged rows; accounts already stored are updated in place."""
    columns = KINDS[kind]
    names = [ident(c.name) for c in columns]
    target = ", ".join([*names, "extra", "batch_id"])
    values = ", ".join([*(f"s.{n}" for n in names), "s.__extra", "$batch"])
    sql = (
        f"INSERT INTO {TABLES[kind]} ({target}) SELECT {values} FROM {STAGE} s "
        f"WHERE {loadable(exclusions=exclusions)}"
    )
    if kind == "accounts":
        updates = ", ".join(f"{n} = excluded.{n}" for n in [*names[1:], "extra", "batch_id"])
        sql += f" ON CONFLICT ({ident(KEYS[kind])}) DO UPDATE SET {updates}"
    return sql


def count_updates(kind: str, *, exclusions: bool) -> str:
    """How many loadable rows replace a stored one (accounts only; calls are never updated)."""
    key = ident(KEYS[kind])
    return (
        f"SELECT count(*) FROM {STAGE} s WHERE {loadable(exclusions=exclusions)} "
        f"AND EXISTS (SELECT 1 FROM {TABLES[kind]} t WHERE t.{key} = s.{key})"
    )
