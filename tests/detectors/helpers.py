"""Small hand-built warehouses for focused tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.warehouse import Warehouse

T0 = datetime(2026, 11, 2, tzinfo=UTC)


def add_account(
    wh: Warehouse,
    account_id: str,
    *,
    created: datetime = T0 - timedelta(days=100),
    payment: str | None = None,
    signup_ip: str | None = None,
) -> None:
    wh.execute(
        "INSERT INTO accounts (account_id, created_at, payment_fingerprint, signup_ip, batch_id) "
        "VALUES ($a, $c, $p, $ip, 0)",
        {"a": account_id, "c": created, "p": payment, "ip": signup_ip},
    )


def add_call(
    wh: Warehouse,
    call_id: str,
    account_id: str,
    prompt: str,
    *,
    ts: datetime = T0,
    client_ip: str | None = None,
    user_agent: str | None = None,
) -> None:
    wh.execute(
        "INSERT INTO calls (call_id, ts, account_id, prompt, client_ip, user_agent, "
        "prompt_tokens, completion_tokens, batch_id) "
        "VALUES ($id, $ts, $a, $p, $ip, $ua, 10, 50, 0)",
        {"id": call_id, "ts": ts, "a": account_id, "p": prompt, "ip": client_ip, "ua": user_agent},
    )
