"""Sign-in, sessions, roles, CSRF and cross-origin refusal, in-process."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from dashboards.app import create_app
from dashboards.control import ControlPlane
from dashboards.settings import DashboardsSettings
from ingest.warehouse import Warehouse
from tests.dashboards.conftest import PASSWORD, World, sign_in

PAGES = ["/overview", "/queue", "/clusters", "/audit", "/users"]
JSON = ["/overview.json", "/queue.json", "/queue.csv", "/clusters.json", "/api/status"]


def test_health_is_public_and_everything_else_needs_a_session(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"ok": True}
    assert client.get("/signin").status_code == 200
    for path in PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/signin?next={path}"
    for path in JSON:
        assert client.get(path).status_code == 401, path
    assert client.post("/api/decisions", json={}).status_code == 401


def test_wrong_password_and_unknown_user_are_refused_alike(client: TestClient) -> None:
    for name, password in (("reviewer", "wrong password!"), ("nobody", PASSWORD)):
        response = client.post("/signin", data={"username": name, "password": password})
        assert response.status_code == 401
        assert response.context["data"]["error"] == "wrong username or password"  # type: ignore[attr-defined]
        assert "dg_session" not in response.cookies


def test_session_cookie_is_httponly_strict_and_secure_under_tls(
    settings: DashboardsSettings, control: ControlPlane
) -> None:
    with TestClient(create_app(settings, control), base_url="https://console.test") as tls:
        response = tls.post(
            "/signin", data={"username": "viewer", "password": PASSWORD}, follow_redirects=False
        )
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    assert f"max-age={int(settings.session_ttl_s)}" in cookie


def test_cookie_over_plain_http_is_not_marked_secure(client: TestClient) -> None:
    response = client.post(
        "/signin", data={"username": "viewer", "password": PASSWORD}, follow_redirects=False
    )
    assert "secure" not in response.headers["set-cookie"].lower()


def test_sessions_expire(world: World, settings: DashboardsSettings, control: ControlPlane) -> None:
    short = settings.model_copy(update={"session_ttl_s": 1.0})
    with TestClient(create_app(short, control)) as client:
        sign_in(client, "viewer")
        assert client.get("/queue.json").status_code == 200
        time.sleep(1.2)
        assert client.get("/queue.json").status_code == 401


def test_passwords_and_session_tokens_are_stored_hashed(
    client: TestClient, control: ControlPlane
) -> None:
    sign_in(client, "viewer")
    token = client.cookies["dg_session"]
    with control.cursor() as wh:
        stored = wh.scalar("SELECT password_hash FROM console_users WHERE username = 'viewer'")
        sessions = wh.fetchall("SELECT token_sha256 FROM console_sessions")
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert all(token not in row[0] for row in sessions)


def test_sign_out_ends_the_session(client: TestClient) -> None:
    csrf = sign_in(client, "viewer")
    token = client.cookies["dg_session"]
    assert client.post("/signout", headers={"x-csrf-token": csrf}).status_code == 200
    client.cookies.set("dg_session", token)  # replaying the old cookie does not work
    assert client.get("/queue.json").status_code == 401


@pytest.mark.parametrize(
    ("user", "path", "status"),
    [
        ("viewer", "/queue.json", 200),
        ("viewer", "/audit.json", 403),
        ("viewer", "/users.json", 403),
        ("reviewer", "/audit.json", 403),
        ("admin", "/audit.json", 200),
        ("admin", "/users.json", 200),
    ],
)
def test_roles_gate_pages(client: TestClient, user: str, path: str, status: int) -> None:
    sign_in(client, user)
    assert client.get(path).status_code == status


def test_viewer_cannot_decide_claim_or_detect(client: TestClient, world: World) -> None:
    csrf = sign_in(client, "viewer")
    headers = {"x-csrf-token": csrf}
    body = {"targets": [{"kind": "ring", "id": world.ring_id}], "action": "suspend", "reason": "x"}
    assert client.post("/api/decisions", json=body, headers=headers).status_code == 403
    assert (
        client.post("/api/claims", json={"targets": body["targets"]}, headers=headers).status_code
        == 403
    )
    assert client.post("/api/detect", headers=headers).status_code == 403


def _suspend(client: TestClient, world: World, headers: dict[str, str]) -> int:
    body = {"targets": [{"kind": "ring", "id": world.ring_id}], "action": "suspend",
            "reason": "card farm"}  # fmt: skip
    return client.post("/api/decisions", json=body, headers=headers).status_code


def test_state_changes_need_the_csrf_token(
    client: TestClient, world: World, control: ControlPlane
) -> None:
    csrf = sign_in(client, "reviewer")
    assert _suspend(client, world, {}) == 403
    assert _suspend(client, world, {"x-csrf-token": "forged"}) == 403
    assert control.store.list_accounts() == []
    assert _suspend(client, world, {"x-csrf-token": csrf}) == 201


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
    ],
)
def test_cross_origin_posts_are_refused_even_with_session_and_token(
    client: TestClient, world: World, control: ControlPlane, headers: dict[str, str]
) -> None:
    csrf = sign_in(client, "reviewer")
    assert _suspend(client, world, {"x-csrf-token": csrf, **headers}) == 403
    assert control.store.list_accounts() == []
    with control.cursor() as wh:
        assert wh.scalar("SELECT count(*) FROM decisions") == 0


def test_same_origin_browser_post_is_accepted(client: TestClient, world: World) -> None:
    csrf = sign_in(client, "reviewer")
    headers = {"x-csrf-token": csrf, "origin": "http://testserver", "sec-fetch-site": "same-origin"}
    assert _suspend(client, world, headers) == 201


def test_cross_origin_sign_in_is_refused(client: TestClient) -> None:
    response = client.post(
        "/signin",
        data={"username": "reviewer", "password": PASSWORD},
        headers={"origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert "dg_session" not in response.cookies


def test_sign_in_redirects_only_to_local_paths(client: TestClient) -> None:
    for target, expected in (("/queue", "/queue"), ("//evil.example/x", "/"), ("https://e.x", "/")):
        response = client.post(
            "/signin",
            data={"username": "viewer", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


def test_pages_carry_a_strict_content_security_policy(client: TestClient) -> None:
    sign_in(client, "viewer")
    csp = client.get("/overview").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("style-src")[0]
    assert client.get("/overview").headers["x-frame-options"] == "DENY"


def test_disabled_user_loses_access(client: TestClient, control: ControlPlane) -> None:
    sign_in(client, "viewer")
    with control.cursor() as wh:
        wh.execute("UPDATE console_users SET disabled = true WHERE username = 'viewer'")
    assert client.get("/queue.json").status_code == 401


def test_admin_creates_a_user_with_a_generated_password(client: TestClient) -> None:
    csrf = sign_in(client, "admin")
    response = client.post(
        "/api/users", json={"username": "newbie", "role": "viewer"}, headers={"x-csrf-token": csrf}
    )
    assert response.status_code == 201
    password = response.json()["password"]
    assert len(password) >= 20
    bad = client.post(
        "/api/users", json={"username": "x", "role": "root"}, headers={"x-csrf-token": csrf}
    )
    assert bad.status_code == 422 and "unknown role" in bad.json()["error"]
    other = TestClient(client.app)
    sign_in(other, "newbie", password)
    assert other.get("/queue.json").status_code == 200


def test_password_hash_is_verifiable_only_with_the_password(world: World) -> None:
    from dashboards.auth import authenticate

    with Warehouse.open(world.db, read_only=True) as wh:
        assert authenticate(wh, "admin", PASSWORD) is not None
        assert authenticate(wh, "admin", PASSWORD + "x") is None


def test_repeated_failed_sign_ins_lock_the_username_for_a_window(client: TestClient) -> None:
    throttle = client.app.state.signin_throttle  # type: ignore[attr-defined]
    now = [1000.0]
    throttle._clock = lambda: now[0]
    for _ in range(throttle.max_failures):
        wrong = {"username": "reviewer", "password": "guess"}
        assert client.post("/signin", data=wrong).status_code == 401
    right = {"username": "reviewer", "password": PASSWORD}
    refused = client.post("/signin", data=right, follow_redirects=False)
    assert refused.status_code == 429  # even the right password: no oracle for the guesser
    assert int(refused.headers["retry-after"]) == throttle.window_s
    assert "dg_session" not in refused.cookies
    assert "too many failed sign-ins" in refused.context["data"]["error"]  # type: ignore[attr-defined]
    other = {"username": "viewer", "password": PASSWORD}
    assert client.post("/signin", data=other, follow_redirects=False).status_code == 303
    now[0] += throttle.window_s
    assert client.post("/signin", data=right, follow_redirects=False).status_code == 303


def test_many_usernames_from_one_address_are_throttled_too() -> None:
    from dashboards.throttle import SignInThrottle

    throttle = SignInThrottle(2, 60.0, clock=lambda: 0.0)
    for i in range(8):
        assert throttle.retry_after(f"user{i}", "10.0.0.9") == 0
        throttle.failed(f"user{i}", "10.0.0.9")
    assert throttle.retry_after("someone-new", "10.0.0.9") == 60
    assert throttle.retry_after("someone-new", "10.0.0.10") == 0
    throttle.failed("alice", "10.0.0.20")
    throttle.failed("alice", "10.0.0.21")
    assert throttle.retry_after("alice", "10.0.0.22") == 60  # the username, from any address
    throttle.succeeded("alice")
    assert throttle.retry_after("alice", "10.0.0.22") == 0
