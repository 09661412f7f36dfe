"""Decisions: the append-only audit log, enforcement state for the gateways, claims, dismissals.

    record = decide(wh, store, user, "ring", "ring-ab12", "suspend", "card farm", run_id=3)

A decision is written to ``decisions`` (who, when, what, why, the evidence snapshot, the accounts
it applied to) with its dismissals in one transaction (a bulk decision: every row or none), then
published through the gateway's :class:`guard.state.StateStore`. If publishing fails part-way, a
``publish-failed`` entry in the log names the accounts not published, the caller gets
:class:`~dashboards.exceptions.PublishFailed`, and :func:`republish` retries (logging a
``republish`` entry). Publishing always sends each account the state of the *newest* decision
covering it, so a retry never undoes a later decision. Each row holds the SHA-256 of the row before
it; :func:`verify_audit_log` finds any row edited or removed after the fact.

A dismissal also writes one ``dismissals`` row per account with its *evidence key* (the ring and
the signals that fired): the queue (and any detector reading that table) does not raise the
account again while its evidence has the same key and its score stays within a margin.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

from dashboards import queries
from dashboards.auth import User
from dashboards.exceptions import ClaimConflict, InvalidDecision, NotFound, PublishFailed
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
# Audit entries about publishing a decision (their evidence names the decision), not decisions.
PUBLISH_FAILED = "publish-failed"
REPUBLISH = "republish"

log = logging.getLogger(__name__)
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


@dataclass(frozen=True)
class _Planned:
    """One target resolved on a run: the accounts, evidence snapshot and dismissal keys."""

    kind: TargetKind
    target_id: str
    accounts: list[str]
    snapshot: dict[str, Any]
    keys: list[tuple[str, str, float]]


def _append(wh: Warehouse, fields: dict[str, Any], decided_at: datetime) -> str:
    """Insert one audit row chained to the row before it (hold the lock, in a transaction)."""
    prev = wh.scalar("SELECT row_sha256 FROM decisions ORDER BY decision_id DESC LIMIT 1")
    prev = prev or GENESIS
    wh.execute(
        "INSERT INTO decisions VALUES ($decision_id, $decided_at, $actor, $actor_role, "
        "$target_kind, $target_id, $action, $reason, $accounts, $run_id, $evidence, "
        "$published, $prev, $hash)",
        {**fields, "decided_at": decided_at, "prev": prev, "hash": _row_hash(prev, fields)},
    )
    return str(prev)


def _record(
    wh: Warehouse, user: User, plan: _Planned, action: Action, reason: str, run_id: int
) -> dict[str, Any]:
    """The decision row, its dismissals and the released claim (in the caller's transaction)."""
    now = datetime.now(UTC)
    decision_id = int(wh.scalar("SELECT nextval('decision_seq')"))
    fields = {
        "decision_id": decision_id,
        "decided_at": now.isoformat(),
        "actor": user.username,
        "actor_role": user.role,
        "target_kind": plan.kind,
        "target_id": plan.target_id,
        "action": action,
        "reason": reason,
        "accounts": plan.accounts,
        "run_id": run_id,
        "evidence": json.dumps(plan.snapshot, sort_keys=True, default=str),
        "published": STATE_OF[action],
    }
    prev = _append(wh, fields, now)
    if action == "dismiss":
        for account_id, key, score in plan.keys:
            wh.execute(
                "INSERT INTO dismissals VALUES ($a, $k, $s, $d, $now)",
                {"a": account_id, "k": key, "s": score, "d": decision_id, "now": now},
            )
    wh.execute(
        "DELETE FROM claims WHERE target_kind = $k AND target_id = $t",
        {"k": plan.kind, "t": plan.target_id},
    )
    return {**fields, "evidence": plan.snapshot, "prev_sha256": prev}


def _event(
    wh: Warehouse, user: User, decision: dict[str, Any], action: str, detail: dict[str, Any]
) -> None:
    """Append a publish-failed or republish entry about ``decision`` (hold the lock)."""
    now = datetime.now(UTC)
    if action == PUBLISH_FAILED:
        accounts, published = detail["unpublished"], "failed"
        reason = (
            f"publishing decision {decision['decision_id']} failed after "
            f"{len(detail['published'])} of {len(decision['accounts'])} accounts: "
            f"{detail['error']}"
        )
    else:
        accounts = list(detail["states"])
        published = ",".join(sorted(set(detail["states"].values())))
        reason = f"republished decision {decision['decision_id']}"
    with wh.transaction():
        fields = {
            "decision_id": int(wh.scalar("SELECT nextval('decision_seq')")),
            "decided_at": now.isoformat(),
            "actor": user.username,
            "actor_role": user.role,
            "target_kind": decision["target_kind"],
            "target_id": decision["target_id"],
            "action": action,
            "reason": reason[:MAX_REASON],
            "accounts": accounts,
            "run_id": decision["run_id"],
            "evidence": json.dumps(
                {"decision_id": decision["decision_id"], **detail}, sort_keys=True, default=str
            ),
            "published": published,
        }
        _append(wh, fields, now)


def _publish(
    wh: Warehouse, store: StateStore, user: User, decision: dict[str, Any]
) -> dict[str, str] | None:
    """Publish the newest decision's state for each of ``decision``'s accounts.

    Returns the states published, or None after a failure, which is written to the audit log
    as a ``publish-failed`` entry naming the accounts not published. Call with the lock held, so
    a newer decision cannot be published in between and then overwritten.
    """
    newest = newest_decisions(wh, list(decision["accounts"]))
    states: dict[str, str] = {}
    try:
        for account_id in decision["accounts"]:
            row = newest.get(account_id, decision)
            note = f"{row['action']} by {row['actor']}: {row['reason']}"[:500]
            store.set_account_state(account_id, STATE_OF[row["action"]], note)
            states[account_id] = STATE_OF[row["action"]]
    except Exception as exc:  # any store failure: recorded, reported, retried by republish
        log.exception("publishing decision %s failed", decision["decision_id"])
        detail = {
            "error": f"{type(exc).__name__}: {exc}",
            "published": list(states),
            "unpublished": [a for a in decision["accounts"] if a not in states],
        }
        _event(wh, user, decision, PUBLISH_FAILED, detail)
        return None
    return states


def _failed(decision_ids: list[int], total: int) -> PublishFailed:
    ids = ", ".join(str(d) for d in decision_ids)
    return PublishFailed(
        f"{len(decision_ids)} of {total} decisions ({ids}) are recorded in the audit log, but "
        "publishing them to the gateways failed, so some accounts are not enforced yet; "
        "retry with Republish (POST /api/decisions/<id>/republish)",
        decision_ids,
    )


def _take(
    wh: Warehouse,
    store: StateStore,
    user: User,
    targets: Sequence[tuple[str, str]],
    action: str,
    reason: str,
    run_id: int | None,
) -> list[dict[str, Any]]:
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
    plans = []
    for kind, target_id in targets:
        checked_kind = check_target(kind)
        resolved = _target(wh, checked_kind, target_id, run_id)
        plans.append(_Planned(checked_kind, target_id, *resolved))
    with _write_lock:
        with wh.transaction():  # every decision row or none
            done = [_record(wh, user, plan, checked, reason, run_id) for plan in plans]
        failed = [d["decision_id"] for d in done if _publish(wh, store, user, d) is None]
    if failed:
        raise _failed(failed, len(done))
    return done


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
    """Record a decision in the audit log, then publish it as enforcement state.

    :class:`PublishFailed` when publishing failed: the decision stays recorded, followed by a
    ``publish-failed`` entry; :func:`republish` retries.
    """
    return _take(wh, store, user, [(target_kind, target_id)], action, reason, run_id)[0]


def decide_many(
    wh: Warehouse,
    store: StateStore,
    user: User,
    targets: Sequence[tuple[str, str]],
    action: str,
    reason: str,
) -> list[dict[str, Any]]:
    """One decision per target on the latest run, recorded in one transaction, then published."""
    return _take(wh, store, user, targets, action, reason, queries.latest_run_id(wh))


def republish(wh: Warehouse, store: StateStore, user: User, decision_id: int) -> dict[str, Any]:
    """Publish a decision's accounts again (each gets its newest decision's state) and audit it."""
    if not user.can("reviewer"):
        raise InvalidDecision(f"{user.username} is a {user.role} and cannot republish")
    with _write_lock:
        rows = wh.records(
            "SELECT decision_id, target_kind, target_id, action, actor, reason, accounts, run_id "
            "FROM decisions WHERE decision_id = $d AND list_contains($actions, action)",
            {"d": decision_id, "actions": list(ACTIONS)},
        )
        if not rows:
            raise NotFound(f"no decision {decision_id}")
        states = _publish(wh, store, user, rows[0])
        if states is None:
            raise _failed([decision_id], 1)
        _event(wh, user, rows[0], REPUBLISH, {"states": states})
    return {"decision_id": decision_id, "states": states}


def newest_decisions(wh: Warehouse, accounts: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``account -> newest decision covering it`` (of ``accounts``, or all): the one that wins."""
    rows = wh.records(
        "SELECT account_id, decision_id, action, actor, reason FROM ("
        " SELECT unnest(accounts) AS account_id, decision_id, action, actor, reason "
        " FROM decisions WHERE list_contains($actions, action)) "
        "WHERE $accounts IS NULL OR list_contains($accounts, account_id) "
        "QUALIFY row_number() OVER (PARTITION BY account_id ORDER BY decision_id DESC) = 1",
        {"actions": list(ACTIONS), "accounts": accounts},
    )
    return {r["account_id"]: r for r in rows}


def unpublished(wh: Warehouse) -> list[int]:
    """Decisions whose newest publishing entry is a failure (not yet republished), oldest first."""
    rows = wh.fetchall(
        "SELECT d, action FROM (SELECT decision_id, action, "
        " CAST(json_extract_string(evidence, '$.decision_id') AS BIGINT) AS d "
        " FROM decisions WHERE list_contains($events, action)) "
        "QUALIFY row_number() OVER (PARTITION BY d ORDER BY decision_id DESC) = 1 ORDER BY d",
        {"events": [PUBLISH_FAILED, REPUBLISH]},
    )
    return [int(d) for d, action in rows if action == PUBLISH_FAILED]


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
        "WHERE list_contains($actions, action) "
        "QUALIFY row_number() OVER (PARTITION BY target_kind, target_id "
        "ORDER BY decision_id DESC) = 1",
        {"actions": list(ACTIONS)},
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
        "WHERE list_contains($actions, action) GROUP BY ALL ORDER BY day, action",
        {"actions": list(ACTIONS)},
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
