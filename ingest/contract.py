"""The call-log contract and the account-export contract (ARCHITECTURE.md, "The call-log contract").

One row per API call. The gateway writes segments with :data:`CALLS_ARROW_SCHEMA`; ``ingest`` also
accepts the same field names from Parquet, JSON Lines and CSV written by anything else. Optional
columns may be absent; unknown extra columns are kept (in the warehouse's ``extra`` JSON column).
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa


@dataclass(frozen=True)
class Column:
    """One field of a contract: its name, warehouse type, Arrow type and whether it is required."""

    name: str
    sql_type: str
    arrow_type: pa.DataType
    required: bool
    doc: str


CALL_COLUMNS: tuple[Column, ...] = (
    Column("call_id", "VARCHAR", pa.string(), True, "unique id of the call"),
    Column("ts", "TIMESTAMPTZ", pa.timestamp("us", tz="UTC"), True, "when the request arrived"),
    Column("account_id", "VARCHAR", pa.string(), True, "the account the key belongs to"),
    Column("api_key_id", "VARCHAR", pa.string(), False, "id of the key (never the secret)"),
    Column("client_ip", "VARCHAR", pa.string(), False, "IPv4 or IPv6 address of the caller"),
    Column("user_agent", "VARCHAR", pa.string(), False, "the caller's User-Agent header"),
    Column("endpoint", "VARCHAR", pa.string(), False, "e.g. /v1/chat/completions, /v1/messages"),
    Column("model", "VARCHAR", pa.string(), False, "the model the caller asked for"),
    Column("prompt", "VARCHAR", pa.string(), True, "the request's text: the user turns, joined"),
    Column("system_prompt", "VARCHAR", pa.string(), False, "the system prompt, if any"),
    Column("response", "VARCHAR", pa.string(), False, "the model's text (may be truncated)"),
    Column("prompt_tokens", "BIGINT", pa.int64(), False, "input tokens"),
    Column("completion_tokens", "BIGINT", pa.int64(), False, "output tokens"),
    Column("status_code", "INTEGER", pa.int32(), False, "HTTP status returned to the client"),
    Column("latency_ms", "DOUBLE", pa.float64(), False, "time from request to last byte"),
)

ACCOUNT_COLUMNS: tuple[Column, ...] = (
    Column("account_id", "VARCHAR", pa.string(), True, "the account's id"),
    Column("created_at", "TIMESTAMPTZ", pa.timestamp("us", tz="UTC"), True, "sign-up time"),
    Column("email_domain", "VARCHAR", pa.string(), False, "domain of the sign-up e-mail"),
    Column("payment_fingerprint", "VARCHAR", pa.string(), False, "hash of the payment method"),
    Column("signup_ip", "VARCHAR", pa.string(), False, "address the account signed up from"),
    Column("country", "VARCHAR", pa.string(), False, "billing or sign-up country"),
    Column("plan", "VARCHAR", pa.string(), False, "the account's plan"),
    Column("org_id", "VARCHAR", pa.string(), False, "organisation the account belongs to"),
)

CALL_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in CALL_COLUMNS)
ACCOUNT_COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in ACCOUNT_COLUMNS)

CALLS_ARROW_SCHEMA = pa.schema(
    [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in CALL_COLUMNS]
)
ACCOUNTS_ARROW_SCHEMA = pa.schema(
    [pa.field(c.name, c.arrow_type, nullable=not c.required) for c in ACCOUNT_COLUMNS]
)
