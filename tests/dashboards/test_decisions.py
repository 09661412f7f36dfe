"""Decisions reach the published state (file backend) and the append-only audit log."""

from __future__ import annotations

import json
import uuid

from fastapi.testclient import TestClient

from dashboards.app import create_app
from dashboards.control import ControlPlane
from dashboards.settings import DashboardsSettings
from guard.state import FileStateStore, RedisStateStore
from tests.dashboards.conftest import World, sign_in

REDIS_URL = "redis://127.0.0.1:6379/0"


def _decide(
    client: TestClient, csrf: str, kind: str, target: str, action: str, reason: str
) -> TestClient:
    body = {"targets": [{"kind": kind, "id": target}], "action": action, "reason": reason}
    return client.post("/api/decisions", json=body, headers={"x-csrf-token": csrf})  # type: ignore[return-value]


def test_suspending_a_ring_publishes_every_flagged_member_and_audits_it(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    response = _decide(client, csrf, "ring", world.ring_id, "suspend", "card farm, one template")
    assert response.status_code == 201
    decision = response.json()["decisions"][0]
    assert sorted(decision["accounts"]) == world.members
    store = FileStateStore(control.settings.state)  # what a gateway reads
    states = {a.account_id: a for a in store.list_accounts()}
    assert sorted(states) == world.members
    assert all(a.state == "suspended" and "card farm" in a.reason for a in states.values())
    sign_in(client, "admin")
    log = client.get("/audit.json").json()
    assert log["broken"] == []
    row = log["decisions"][0]
    assert (row["actor"], row["actor_role"], row["action"], row["target_id"]) == (
        "reviewer", "reviewer", "suspend", world.ring_id)  # fmt: skip
    assert row["reason"] == "card farm, one template" and row["decided_at"]
    snapshot = client.get(f"/audit/{row['decision_id']}.json").json()
    assert snapshot["ring"]["ring_id"] == world.ring_id
    assert {m["account_id"] for m in snapshot["members"]} >= set(world.members)


def test_decided_items_leave_the_open_queue_and_show_on_pages(
    reviewer: tuple[TestClient, str], world: World
) -> None:
    client, csrf = reviewer
    assert (
        _decide(client, csrf, "ring", world.ring_id, "restrict", "restrict it").status_code == 201
    )
    open_items = client.get("/queue.json", params={"per_page": 1000}).json()["items"]
    assert world.ring_id not in {i["target_id"] for i in open_items}
    assert not set(world.members) & {i["target_id"] for i in open_items}
    decided = client.get("/queue.json", params={"status": "decided", "per_page": 1000}).json()
    assert world.ring_id in {i["target_id"] for i in decided["items"]}
    account = client.get(f"/accounts/{world.members[0]}.json").json()
    assert account["state"] == "restricted"
    assert account["decisions"][0]["action"] == "restrict"
    ring = client.get(f"/rings/{world.ring_id}.json").json()
    assert {m["state"] for m in ring["members"] if m["flagged"]} == {"restricted"}
    assert ring["decisions"][0]["reason"] == "restrict it"


def test_a_decision_needs_a_reason_and_a_known_action_and_target(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    cases = [
        (("ring", world.ring_id, "suspend", "   "), 422, "needs a reason"),
        (("ring", world.ring_id, "delete", "why"), 422, "unknown action"),
        (("ring", "ring-missing", "suspend", "why"), 404, "no ring"),
        (("account", "acct_missing", "suspend", "why"), 404, "no account"),
    ]
    for args, status, message in cases:
        response = _decide(client, csrf, *args)
        assert response.status_code == status, args
        assert message in response.json()["error"]
    too_long = _decide(client, csrf, "ring", world.ring_id, "suspend", "x" * 2001)
    assert too_long.status_code == 422
    assert control.store.list_accounts() == []
    with control.cursor() as wh:
        assert wh.scalar("SELECT count(*) FROM decisions") == 0


def test_bulk_decision_checks_every_target_before_taking_any(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    body = {
        "targets": [{"kind": "account", "id": world.members[0]}, {"kind": "ring", "id": "ring-x"}],
        "action": "throttle",
        "reason": "bulk",
    }
    assert (
        client.post("/api/decisions", json=body, headers={"x-csrf-token": csrf}).status_code == 404
    )
    assert control.store.list_accounts() == []
    body["targets"] = [{"kind": "account", "id": a} for a in world.members[:3]]
    response = client.post("/api/decisions", json=body, headers={"x-csrf-token": csrf})
    assert response.status_code == 201 and len(response.json()["decisions"]) == 3
    assert {a.account_id: a.state for a in control.store.list_accounts()} == {
        a: "throttled" for a in world.members[:3]
    }


def test_dismissed_account_is_not_raised_again_for_the_same_evidence(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    target = world.members[0]
    control.detect()  # the fixture planted embeddings after its run: bring the evidence up to date
    assert _decide(client, csrf, "account", target, "dismiss", "known customer").status_code == 201
    assert control.store.get_account(target).state == "active"
    control.detect()  # a new run over the same data finds the same evidence
    with control.cursor() as wh:
        assert wh.scalar("SELECT count(*) FROM detection_runs") == 3
        assert (
            wh.scalar("SELECT count(*) FROM dismissals WHERE account_id = $a", {"a": target}) == 1
        )
    items = client.get("/queue.json", params={"per_page": 1000}).json()["items"]
    assert target not in {i["target_id"] for i in items}
    dismissed = client.get("/queue.json", params={"status": "dismissed", "per_page": 1000}).json()
    assert [i["target_id"] for i in dismissed["items"]] == [target]


def test_dismissal_lapses_when_the_evidence_changes(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    target = world.members[1]
    assert _decide(client, csrf, "account", target, "dismiss", "looks fine").status_code == 201
    with control.cursor() as wh:  # the evidence the reviewer saw is not what is flagged now
        wh.execute("UPDATE dismissals SET evidence_key = 'older-evidence'")
    items = client.get("/queue.json", params={"per_page": 1000}).json()["items"]
    assert target in {i["target_id"] for i in items}


def test_claims_are_exclusive_until_released(
    reviewer: tuple[TestClient, str], world: World
) -> None:
    client, csrf = reviewer
    targets = {"targets": [{"kind": "ring", "id": world.ring_id}]}
    assert (
        client.post("/api/claims", json=targets, headers={"x-csrf-token": csrf}).status_code == 200
    )
    item = client.get("/queue.json", params={"status": "claimed"}).json()["items"][0]
    assert (item["target_id"], item["claimed_by"]) == (world.ring_id, "reviewer")
    other = TestClient(client.app)
    other_csrf = sign_in(other, "reviewer2")
    refused = other.post("/api/claims", json=targets, headers={"x-csrf-token": other_csrf})
    assert refused.status_code == 409 and "claimed by reviewer" in refused.json()["error"]
    release = {**targets, "release": True}
    assert (
        other.post("/api/claims", json=release, headers={"x-csrf-token": other_csrf}).status_code
        == 409
    )
    assert (
        client.post("/api/claims", json=release, headers={"x-csrf-token": csrf}).status_code == 200
    )
    assert (
        other.post("/api/claims", json=targets, headers={"x-csrf-token": other_csrf}).status_code
        == 200
    )


def test_the_audit_log_detects_an_edited_row(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    _decide(client, csrf, "account", world.members[0], "throttle", "first")
    _decide(client, csrf, "account", world.members[1], "suspend", "second")
    with control.cursor() as wh:
        wh.execute("UPDATE decisions SET reason = 'nothing to see' WHERE decision_id = 1")
    sign_in(client, "admin")
    assert client.get("/audit.json").json()["broken"] == [1]


def test_audit_snapshot_keeps_the_evidence_seen_at_decision_time(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    _decide(client, csrf, "account", world.members[0], "suspend", "seen")
    with control.cursor() as wh:
        evidence = json.loads(wh.scalar("SELECT evidence FROM decisions"))
        score = wh.scalar(
            "SELECT score FROM flags WHERE account_id = $a AND run_id = 1", {"a": world.members[0]}
        )
    assert evidence["flag"]["score"] == score
    assert evidence["flag"]["reasons"]


def test_decisions_publish_to_redis_when_configured(
    settings: DashboardsSettings, world: World
) -> None:
    prefix = f"dg-test-{uuid.uuid4().hex[:8]}:"
    shared = settings.model_copy(update={"redis": REDIS_URL, "redis_prefix": prefix})
    plane = ControlPlane(shared)
    gateway_view = RedisStateStore(REDIS_URL, prefix)  # what every gateway replica reads
    try:
        with TestClient(create_app(shared, plane)) as client:
            csrf = sign_in(client, "reviewer")
            before = gateway_view.version()
            response = _decide(client, csrf, "account", world.members[0], "suspend", "redis")
            assert response.status_code == 201
        assert gateway_view.version() != before
        assert gateway_view.get_account(world.members[0]).state == "suspended"
    finally:
        keys = gateway_view._redis.keys(prefix + "*")
        if keys:
            gateway_view._redis.delete(*keys)
        gateway_view.close()
        plane.close()
