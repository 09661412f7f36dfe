"""Decisions: the append-only audit log, enforcement state for the gateways, claims, dismissals.

    record = decide(wh, store, user, "ring", "ring-ab12", "suspend", "card farm", run_id=3)

A decision is written to ``decisions`` (who, when, what, why, the evidence snapshot, the accounts
it applied to) and published through the gateway's :class:`guard.state.StateStore` in one step: if
publishing fails the audit row is rolled back, so the log never claims an enforcement that did not
happen. Each row holds the SHA-256 of the row before it; :func:`verify_audit_log` finds any row
edited or removed after the fact.

A dismissal also writes one ``dismissals`` row per account with its *evidence key* (the ring and
the signals that fired): the queue (and any detector reading that table) does not raise the
account again while its evidence has the same key and its score stays within a margin.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from dashboards import queries
from dashboards.auth import User
from dashboards.exceptions import ClaimConflict, InvalidDecision, NotFound
from guard.state import StateStore
from ingest.warehouse import Warehouse

Action = Literal["suspend", "restrict", "throttle", "dismiss"]
ACTIONS: tuple[str, ...] = get_args(Action)
TargetKind = Literal["ring", "account"]
TARGET_KINDS: tuple[str, ...] = get_args(TargetKind)
STATE_OF: dict[str, str] = {
    "suspend": "suspended",
    "restrict": "restricted",
    "throttle": "throttled",
    "dismiss": "active",
}
MAX_REASON = 2000
GENESIS = "0" * 64

_write_lock = threading.Lock()  # one writer of the hash chain at a time (serve is one process)


def check_target(kind: str) -> TargetKind:
    if kind not in TARGET_KINDS:
        raise InvalidDecision(f"unknown target kind {kind!r}: use ring or account")
    return cast(TargetKind, kind)


def check_action(action: str) -> Action:
    if action not in ACTIONS:
        raise InvalidDecision(f"unknown action {action!r}: use one of {', '.join(ACTIONS)}")
    return cast(Action, action)


def evidence_key(ring_id: str | None, signals: dict[str, Any], baseline_flagged: bool) -> str:
    """What an account was flagged for: its ring and the signals that contributed, hashed."""
    fired = sorted(name for name, s in signals.items() if float(s.get("contribution", 0)) > 0)
    text = json.dumps({"ring": ring_id, "signals": fired, "baseline": bool(baseline_flagged)})
    return hashlib.sha256(text.encode()).hexdigest()


def _row_hash(prev: str, fields: dict[str, Any]) -> str:
    canonical = json.dumps(fields, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256((prev + canonical).encode()).hexdigest()


def _target(
    wh: Warehouse, kind: TargetKind, target_id: str, run_id: int
) -> tuple[list[str], dict[str, Any], list[tuple[str, str, float]]]:
    """The accounts a decision applies to, its evidence snapshot, and (account, key, score)."""
    if kind == "ring":
        ring = queries.ring(wh, run_id, target_id)
        if ring is None:
            raise NotFound(f"no ring {target_id!r} in detection run {run_id}")
        members = queries.ring_members(wh, run_id, target_id)
        flagged = [m["account_id"] for m in members if m["flagged"]]
        accounts = flagged or [m["account_id"] for m in members]
        signals = ring["evidence"].get("signals", {})
        keys = [
            (
                m["account_id"],
                evidence_key(target_id, signals, bool(m["baseline_flagged"])),
                float(m["score"]),
            )
            for m in members
            if m["account_id"] in accounts
        ]
        snapshot = {
            "ring": ring,
            "members": [
                {"account_id": m["account_id"], "score": m["score"], "flagged": m["flagged"]}
                for m in members
            ],
        }
        return accounts, snapshot, keys
    flag = queries.account_flag(wh, run_id, target_id)
    if flag is None:
        raise NotFound(f"no account {target_id!r} in detection run {run_id}")
    ring = queries.ring(wh, run_id, flag["ring_id"]) if flag["ring_id"] else None
    signals = ring["evidence"].get("signals", {}) if ring else {}
    key = evidence_key(flag["ring_id"], signals, bool(flag["baseline_flagged"]))
    return [target_id], {"flag": flag, "ring": ring}, [(target_id, key, float(flag["score"]))]


def decide(
    wh: Warehouse,
    store: StateStore,
    user: User,
    target_kind: str,
    target_id: str,
    action: str,
    reason: str,
    run_id: int | None,
) -> dict[str, Any]:
    """Record a decision in the audit log and publish it as enforcement state."""
    kind = check_target(target_kind)
    checked = check_action(action)
    reason = reason.strip()
    if not reason:
        raise InvalidDecision("a decision needs a reason")
    if len(reason) > MAX_REASON:
        raise InvalidDecision(f"the reason is longer than {MAX_REASON} characters")
    if not user.can("reviewer"):
        raise InvalidDecision(f"{user.username} is a {user.role} and cannot decide")
    if run_id is None:
        raise NotFound("there is no detection run yet to decide on")
    accounts, snapshot, keys = _target(wh, kind, target_id, run_id)
    state = STATE_OF[checked]
    now = datetime.now(UTC)
    with _write_lock, wh.transaction():
        decision_id = int(wh.scalar("SELECT nextval('decision_seq')"))
        prev = wh.scalar("SELECT row_sha256 FROM decisions ORDER BY decision_id DESC LIMIT 1")
        fields = {
            "decision_id": decision_id,
            "decided_at": now.isoformat(),
            "actor": user.username,
            "actor_role": user.role,
            "target_kind": kind,
            "target_id": target_id,
            "action": checked,
            "reason": reason,
            "accounts": accounts,
            "run_id": run_id,
            "evidence": json.dumps(snapshot, sort_keys=True, default=str),
            "published": state,
        }
        prev = prev or GENESIS
        wh.execute(
            "INSERT INTO decisions VALUES ($decision_id, $decided_at, $actor, $actor_role, "
            "$target_kind, $target_id, $action, $reason, $accounts, $run_id, $evidence, "
            "$published, $prev, $hash)",
            {**fields, "decided_at": now, "prev": prev, "hash": _row_hash(prev, fields)},
        )
        if checked == "dismiss":
            for account_id, key, score in keys:
                wh.execute(
                    "INSERT INTO dismissals VALUES ($a, $k, $s, $d, $now)",
                    {"a": account_id, "k": key, "s": score, "d": decision_id, "now": now},
                )
        wh.execute(
            "DELETE FROM claims WHERE target_kind = $k AND target_id = $t",
            {"k": kind, "t": target_id},
        )
        note = f"{checked} by {user.username}: {reason}"[:500]
        for account_id in accounts:  # a failure here rolls the audit row back
            store.set_account_state(account_id, state, note)
    return {**fields, "evidence": snapshot, "prev_sha256": prev}


def decide_many(
    wh: Warehouse,
    store: StateStore,
    user: User,
    targets: Sequence[tuple[str, str]],
    action: str,
    reason: str,
) -> list[dict[str, Any]]:
    """One decision per target on the latest run; every target is checked before any is taken."""
    run_id = queries.latest_run_id(wh)
    if run_id is None:
        raise NotFound("there is no detection run yet to decide on")
    for kind, target_id in targets:
        _target(wh, check_target(kind), target_id, run_id)
    return [decide(wh, store, user, k, t, action, reason, run_id) for k, t in targets]


def audit_log(
    wh: Warehouse,
    limit: int = 500,
    account_id: str | None = None,
    target: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Decisions, newest first: all, those covering an account, or those on one target."""
    kind, target_id = target or (None, None)
    return wh.records(
        "SELECT decision_id, decided_at, actor, actor_role, target_kind, target_id, action, "
        "reason, accounts, run_id, published, row_sha256 FROM decisions "
        "WHERE ($a IS NULL OR list_contains(accounts, $a)) "
        "AND ($k IS NULL OR (target_kind = $k AND target_id = $t)) "
        "ORDER BY decision_id DESC LIMIT $lim",
        {"a": account_id, "k": kind, "t": target_id, "lim": limit},
    )


def decision_evidence(wh: Warehouse, decision_id: int) -> dict[str, Any]:
    raw = wh.scalar("SELECT evidence FROM decisions WHERE decision_id = $d", {"d": decision_id})
    if raw is None:
        raise NotFound(f"no decision {decision_id}")
    return cast(dict[str, Any], json.loads(raw))


def verify_audit_log(wh: Warehouse) -> list[int]:
    """Decision ids whose row no longer matches its hash chain (empty: the log is intact)."""
    broken: list[int] = []
    prev = GENESIS
    for row in wh.records("SELECT * FROM decisions ORDER BY decision_id"):
        fields = {
            "decision_id": row["decision_id"],
            "decided_at": row["decided_at"].astimezone(UTC).isoformat(),
            "actor": row["actor"],
            "actor_role": row["actor_role"],
            "target_kind": row["target_kind"],
            "target_id": row["target_id"],
            "action": row["action"],
            "reason": row["reason"],
            "accounts": list(row["accounts"]),
            "run_id": row["run_id"],
            "evidence": row["evidence"],
            "published": row["published"],
        }
        if row["prev_sha256"] != prev or _row_hash(prev, fields) != row["row_sha256"]:
            broken.append(int(row["decision_id"]))
        prev = row["row_sha256"]
    return broken


def latest_decisions(wh: Warehouse) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest decision on each target: ``(kind, id) -> row``."""
    rows = wh.records(
        "SELECT target_kind, target_id, action, actor, decided_at FROM decisions "
        "QUALIFY row_number() OVER (PARTITION BY target_kind, target_id "
        "ORDER BY decision_id DESC) = 1"
    )
    return {(r["target_kind"], r["target_id"]): r for r in rows}


def dismissed(wh: Warehouse) -> dict[str, list[tuple[str, float]]]:
    """``account -> [(evidence_key, score)]`` of every dismissal."""
    out: dict[str, list[tuple[str, float]]] = {}
    for account_id, key, score in wh.fetchall(
        "SELECT account_id, evidence_key, score FROM dismissals"
    ):
        out.setdefault(account_id, []).append((key, float(score)))
    return out


def decisions_by_day(wh: Warehouse) -> list[dict[str, Any]]:
    return wh.records(
        "SELECT decided_at::DATE AS day, action, count(*) AS n FROM decisions "
        "GROUP BY ALL ORDER BY day, action"
    )


# -- claims ----------------------------------------------------------------------------------
def claims(wh: Warehouse) -> dict[tuple[str, str], str]:
    return {
        (k, t): u for k, t, u in wh.fetchall("SELECT target_kind, target_id, username FROM claims")
    }


def claim(wh: Warehouse, user: User, targets: Sequence[tuple[str, str]]) -> None:
    """Claim every target, or none when one is held by someone else."""
    with _write_lock, wh.transaction():
        for kind, target_id in targets:
            check_target(kind)
            holder = wh.scalar(
                "SELECT username FROM claims WHERE target_kind = $k AND target_id = $t",
                {"k": kind, "t": target_id},
            )
            if holder not in (None, user.username):
                raise ClaimConflict(f"{kind} {target_id} is claimed by {holder}")
            if holder is None:
                wh.execute(
                    "INSERT INTO claims VALUES ($k, $t, $u, now())",
                    {"k": kind, "t": target_id, "u": user.username},
                )


def release(wh: Warehouse, user: User, targets: Sequence[tuple[str, str]]) -> None:
    """Release claims held by ``user`` (an admin may release anyone's)."""
    with _write_lock, wh.transaction():
        for kind, target_id in targets:
            holder = wh.scalar(
                "SELECT username FROM claims WHERE target_kind = $k AND target_id = $t",
                {"k": kind, "t": target_id},
            )
            if holder is not None and holder != user.username and not user.can("admin"):
                raise ClaimConflict(f"{kind} {target_id} is claimed by {holder}, not by you")
            wh.execute(
                "DELETE FROM claims WHERE target_kind = $k AND target_id = $t",
                {"k": kind, "t": target_id},
            )
