"""The newest decision wins (queue and published state); publishing happens after the audit rows
commit, and a state store that fails part-way leaves a ``publish-failed`` entry to republish."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from dashboards.control import ControlPlane
from guard.exceptions import StateError
from guard.state import AccountRecord, FileStateStore
from tests.dashboards.conftest import World, sign_in


class FailingStore(FileStateStore):
    """The real file store, down from its ``fail_at``-th account write on (1-based)."""

    def __init__(self, path: Path, fail_at: int | None) -> None:
        super().__init__(path)
        self.fail_at = fail_at
        self.writes = 0

    def _put_account(self, record: AccountRecord) -> None:
        self.writes += 1
        if self.fail_at is not None and self.writes >= self.fail_at:
            raise StateError("state store unavailable")
        super()._put_account(record)


def _decide(
    client: TestClient, csrf: str, targets: list[tuple[str, str]], action: str, reason: str
) -> Any:
    body = {
        "targets": [{"kind": k, "id": t} for k, t in targets],
        "action": action,
        "reason": reason,
    }
    return client.post("/api/decisions", json=body, headers={"x-csrf-token": csrf})


def _statuses(client: TestClient) -> dict[str, str]:
    data = client.get("/queue.json", params={"status": "all", "per_page": 1000}).json()
    return {i["target_id"]: i["status"] for i in data["items"]}


def _published(control: ControlPlane) -> dict[str, str]:
    """What a gateway reads from the state file."""
    return {a.account_id: a.state for a in FileStateStore(control.settings.state).list_accounts()}


def _audit(client: TestClient) -> dict[str, Any]:
    admin = TestClient(client.app)
    sign_in(admin, "admin")
    return dict(admin.get("/audit.json").json())


# -- the newest decision wins ----------------------------------------------------------------------
def test_suspend_then_dismiss_leaves_the_ring_and_its_members_dismissed_and_active(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    ring = [("ring", world.ring_id)]
    assert _decide(client, csrf, ring, "suspend", "card farm").status_code == 201
    assert _decide(client, csrf, ring, "dismiss", "appeal upheld").status_code == 201
    statuses = _statuses(client)
    assert statuses[world.ring_id] == "dismissed"
    assert {statuses[m] for m in world.members} == {"dismissed"}
    assert _published(control) == dict.fromkeys(world.members, "active")
    ring_page = client.get(f"/rings/{world.ring_id}.json").json()
    assert {m["state"] for m in ring_page["members"] if m["flagged"]} == {"active"}


def test_dismiss_then_suspend_leaves_the_ring_and_its_members_decided_and_suspended(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    ring = [("ring", world.ring_id)]
    assert _decide(client, csrf, ring, "dismiss", "looked fine").status_code == 201
    assert _decide(client, csrf, ring, "suspend", "it was not").status_code == 201
    statuses = _statuses(client)
    assert statuses[world.ring_id] == "decided"
    assert {statuses[m] for m in world.members} == {"decided"}
    assert _published(control) == dict.fromkeys(world.members, "suspended")


def test_a_later_account_dismissal_wins_over_the_ring_suspension(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    freed, *others = world.members
    assert _decide(client, csrf, [("ring", world.ring_id)], "suspend", "farm").status_code == 201
    assert _decide(client, csrf, [("account", freed)], "dismiss", "customer").status_code == 201
    statuses = _statuses(client)
    assert statuses[freed] == "dismissed"
    assert {statuses[m] for m in others} == {"decided"}
    assert client.get(f"/accounts/{freed}.json").json()["state"] == "active"
    # republishing the older ring decision does not undo the newer dismissal
    republished = client.post("/api/decisions/1/republish", headers={"x-csrf-token": csrf})
    assert republished.status_code == 200
    assert _published(control) == {freed: "active", **dict.fromkeys(others, "suspended")}


# -- publishing after commit --------------------------------------------------------------------
def test_a_store_failing_mid_ring_is_audited_reported_and_republished(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    assert len(world.members) >= 3
    control.store = FailingStore(control.settings.state, fail_at=3)
    response = _decide(client, csrf, [("ring", world.ring_id)], "suspend", "card farm")
    assert response.status_code == 502
    body = response.json()
    assert "publishing them to the gateways failed" in body["error"]
    assert "Republish" in body["error"]
    assert body["decision_ids"] == [1]
    assert body["republish"] == ["/api/decisions/1/republish"]

    log = _audit(client)
    assert log["broken"] == []
    failed, decision = log["decisions"]  # newest first
    assert (decision["decision_id"], decision["action"]) == (1, "suspend")
    assert (failed["action"], failed["published"]) == ("publish-failed", "failed")
    assert "StateError: state store unavailable" in failed["reason"]
    published_first = decision["accounts"][:2]
    assert sorted(failed["accounts"]) == sorted(decision["accounts"][2:])
    assert _published(control) == dict.fromkeys(published_first, "suspended")

    ring = client.get(f"/rings/{world.ring_id}.json").json()
    assert ring["unpublished"] == [1]
    html = client.get(f"/rings/{world.ring_id}").text
    assert 'class="republish" data-decision="1"' in html

    still_down = client.post("/api/decisions/1/republish", headers={"x-csrf-token": csrf})
    assert still_down.status_code == 502 and still_down.json()["decision_ids"] == [1]
    assert client.get(f"/rings/{world.ring_id}.json").json()["unpublished"] == [1]

    control.store = FailingStore(control.settings.state, fail_at=None)  # the store is back
    done = client.post("/api/decisions/1/republish", headers={"x-csrf-token": csrf})
    assert done.status_code == 200
    assert done.json()["republished"]["states"] == dict.fromkeys(world.members, "suspended")
    assert _published(control) == dict.fromkeys(world.members, "suspended")
    assert client.get(f"/rings/{world.ring_id}.json").json()["unpublished"] == []
    log = _audit(client)
    assert [d["action"] for d in log["decisions"]] == [
        "republish",
        "publish-failed",
        "publish-failed",
        "suspend",
    ]
    assert log["broken"] == []
    # publishing entries are not decisions: the ring stays decided, the chart counts one
    assert _statuses(client)[world.ring_id] == "decided"
    overview = client.get("/overview.json").json()
    assert [d["action"] for d in overview["decisions"]] == ["suspend"]


def test_a_bulk_decision_is_recorded_whole_when_the_store_goes_down_part_way(
    reviewer: tuple[TestClient, str], world: World, control: ControlPlane
) -> None:
    client, csrf = reviewer
    control.store = FailingStore(control.settings.state, fail_at=2)
    targets = [("account", a) for a in world.members[:3]]
    response = _decide(client, csrf, targets, "throttle", "bulk")
    assert response.status_code == 502
    assert response.json()["decision_ids"] == [2, 3]
    with control.cursor() as wh:
        actions = wh.fetchall("SELECT action FROM decisions ORDER BY decision_id")
    assert [a for (a,) in actions] == ["throttle"] * 3 + ["publish-failed"] * 2
    assert _published(control) == {world.members[0]: "throttled"}


def test_only_reviewers_republish_and_only_decisions(
    client: TestClient, world: World, control: ControlPlane
) -> None:
    csrf = sign_in(client, "reviewer")
    control.store = FailingStore(control.settings.state, fail_at=1)
    assert _decide(client, csrf, [("ring", world.ring_id)], "suspend", "x").status_code == 502
    missing = client.post("/api/decisions/99/republish", headers={"x-csrf-token": csrf})
    assert missing.status_code == 404
    event = client.post("/api/decisions/2/republish", headers={"x-csrf-token": csrf})
    assert event.status_code == 404  # entry 2 is the publish-failed entry, not a decision
    viewer = TestClient(client.app)
    viewer_csrf = sign_in(viewer, "viewer")
    refused = viewer.post("/api/decisions/1/republish", headers={"x-csrf-token": viewer_csrf})
    assert refused.status_code == 403
    assert client.post("/api/decisions/1/republish").status_code == 403  # no CSRF token
    assert control.store.writes == 1  # nothing but the first failed write reached the store
