"""End to end in headless Chromium: a real ``serve``, a real gateway, a mock upstream, traffic.

History (a simulated population with one extraction ring) is loaded into the warehouse first;
live traffic then goes through the gateway (ring members, ordinary accounts and an account that
sends XSS payloads), lands in the spool, and ``serve`` ingests it and runs detection. A reviewer
signs in, finds the ring first in the queue, checks its graph, suspends it, and the gateway refuses
a member's key with 403; the time from the click to the first 403 is measured and printed.

Needs Debian's Chromium (``apt-get install -y chromium``) and Playwright for Python; skipped
cleanly without them. Set ``DG_SCREENSHOTS_DIR`` to keep the screenshots (e.g. ``docs``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from distillguard.processes import CLI, Server, free_port
from guard.state import FileStateStore
from ingest.loader import ingest_file
from ingest.simulator import SimulationConfig, simulate, write
from ingest.warehouse import Warehouse
from tests.dashboards.conftest import PASSWORD, XSS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed"),
]
XSS_ACCOUNT = "acct-xss-probe"


@dataclass
class Stack:
    console: Server
    gateway: Server
    keys: dict[str, str]
    ring_members: list[str]
    shots: Path


def _chat(gateway: Server, key: str, prompt: str) -> int:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "mock-1", "messages": [{"role": "user", "content": prompt}]},
        timeout=10,
    )
    return response.status_code


def _users(db: Path) -> None:
    import subprocess

    for name, role in (("reviewer", "reviewer"), ("admin", "admin")):
        subprocess.run(
            [CLI, "users", "create", "--username", name, "--role", role, "--db", str(db)],
            input=PASSWORD + "\n", text=True, check=True, capture_output=True,
        )  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    pytest.importorskip("playwright.sync_api")
    root = tmp_path_factory.mktemp("e2e")
    write(simulate(SimulationConfig(seed=3).scaled(0.15), corpus=None), root / "sim")
    db, spool, state = root / "w.duckdb", root / "spool", root / "state.json"
    with Warehouse.open(db) as wh:
        ingest_file(wh, root / "sim" / "accounts.parquet", "accounts")
        ingest_file(wh, root / "sim" / "calls.parquet", "calls")
        members = [r[0] for r in wh.fetchall(
            "SELECT account_id FROM read_parquet($p) WHERE is_fraud ORDER BY 1",
            {"p": str(root / "sim" / "labels.parquet")})]  # fmt: skip
        benign = [r[0] for r in wh.fetchall(
            "SELECT account_id FROM read_parquet($p) WHERE NOT is_fraud ORDER BY 1 LIMIT 5",
            {"p": str(root / "sim" / "labels.parquet")})]  # fmt: skip
    _users(db)
    store = FileStateStore(state)
    keys = {a: store.create_key(a)[1] for a in [*members, *benign, XSS_ACCOUNT]}
    env = {"UPSTREAM_KEY": "upstream-secret", "GUARD_SEGMENT_MAX_AGE_S": "1"}
    mock = Server(["mock-upstream", "--latency-ms", "1", "--api-key-env", "UPSTREAM_KEY"],
                  free_port(), root / "mock.log", env)  # fmt: skip
    console = Server(["serve", "--db", str(db), "--spool", str(spool), "--state", str(state),
                      "--detect-interval", "3", "--embed-budget", "1000"],
                     free_port(), root / "serve.log")  # fmt: skip
    with mock:
        gateway = Server(["gateway", "--upstream", mock.url, "--upstream-key-env", "UPSTREAM_KEY",
                          "--spool", str(spool), "--state", str(state)],
                         free_port(), root / "gateway.log", env)  # fmt: skip
        with gateway, console:
            for i, member in enumerate(members):  # the ring keeps harvesting
                for n in range(2):
                    prompt = (
                        "solve the following problem / explain each step of your reasoning in "
                        f"detail / a train travels {i * 7 + n} km in {n + 2} hours"
                    )
                    assert _chat(gateway, keys[member], prompt) == 200
            for account in benign:
                assert _chat(gateway, keys[account], "what should I cook tonight?") == 200
            for payload in XSS:
                assert _chat(gateway, keys[XSS_ACCOUNT], payload) == 200
            _wait_for_detection(console, len(members) * 2 + len(benign) + len(XSS))
            shots = Path(os.environ.get("DG_SCREENSHOTS_DIR") or root / "shots")
            shots.mkdir(parents=True, exist_ok=True)
            yield Stack(console, gateway, keys, members, shots)


def _wait_for_detection(console: Server, live_calls: int, timeout: float = 300) -> None:
    with httpx.Client(base_url=console.url) as client:
        client.post("/signin", data={"username": "reviewer", "password": PASSWORD})
        deadline = time.monotonic() + timeout
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status = client.get("/api/status").json()
            last = status["last_detection"]
            if (
                last is not None
                and status["ingested_rows"] >= live_calls
                and last["at"] > status["last_ingest"]
            ):
                return
            time.sleep(1)
    raise AssertionError(f"serve did not ingest and detect the live traffic: {status}")


@dataclass
class Browser:
    page: Any
    dialogs: list[str]
    errors: list[str]


@pytest.fixture
def browser(stack: Stack) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        seen = Browser(context.new_page(), [], [])

        def on_dialog(dialog: Any) -> None:
            seen.dialogs.append(dialog.message)
            dialog.dismiss()

        def on_console(message: Any) -> None:
            if message.type == "error":
                seen.errors.append(message.text)

        seen.page.on("dialog", on_dialog)
        seen.page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
        seen.page.on("console", on_console)
        try:
            yield seen
        finally:
            context.close()
            chromium.close()


def _sign_in(page: Any, base: str, username: str) -> None:
    page.goto(base + "/queue")
    assert "/signin" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/queue")


def _no_script_ran(b: Browser) -> None:
    page = b.page
    assert b.dialogs == [], b.dialogs
    assert b.errors == [], b.errors
    assert page.evaluate("document.querySelectorAll('a[href^=\"javascript:\"]').length") == 0
    assert page.evaluate("document.querySelectorAll('main img, main script').length") == 0


def test_review_suspend_and_the_gateway_refuses_the_ring(stack: Stack, browser: Browser) -> None:
    page, base = browser.page, stack.console.url
    _sign_in(page, base, "reviewer")

    first = page.locator("#queue tbody tr").first
    assert first.get_attribute("data-kind") == "ring"
    ring_id = first.get_attribute("data-target")
    ring = httpx.get(f"{base}/rings/{ring_id}.json", cookies=_cookies(page)).json()
    members = {m["account_id"] for m in ring["members"] if m["flagged"]}
    assert len(members & set(stack.ring_members)) >= 0.8 * len(stack.ring_members)
    page.screenshot(path=str(stack.shots / "console-queue.png"), full_page=False)
    page.goto(f"{base}/overview")
    page.wait_for_selector("#plot-traffic .main-svg")
    page.screenshot(path=str(stack.shots / "console-overview.png"), full_page=False)

    page.goto(f"{base}/rings/{ring_id}")
    page.wait_for_function("window.dgGraph && window.dgGraph.nodes().length > 0")
    assert page.evaluate("window.dgGraph.nodes().length") == len(ring["graph"]["nodes"])
    assert page.evaluate("window.dgGraph.edges().length") == len(ring["graph"]["edges"])
    page.wait_for_selector("#plot-timeline .main-svg")
    page.screenshot(path=str(stack.shots / "console-ring.png"), full_page=False)

    member = sorted(members)[0]
    assert _chat(stack.gateway, stack.keys[member], "one more question") == 200
    page.select_option("form.decide select[name=action]", "suspend")
    page.fill("form.decide input[name=reason]", "extraction ring: shared cards and one template")
    clicked = time.monotonic()
    page.click("form.decide button[type=submit]")
    page.wait_for_selector("form.decide .result.ok")
    status = 200
    while status != 403 and time.monotonic() - clicked < 10:
        status = _chat(stack.gateway, stack.keys[member], "and another")
        if status != 403:
            time.sleep(0.05)
    enforced = time.monotonic() - clicked
    print(f"\ndecision click -> gateway 403 for a member's key: {enforced:.2f} s")
    assert status == 403 and enforced < 5
    _no_script_ran(browser)

    _sign_in_again(page, base, "admin")
    page.goto(f"{base}/audit")
    row = page.locator("#audit tbody tr").first
    text = row.inner_text()
    assert "suspend" in text and ring_id in text and "reviewer" in text
    assert "Hash chain intact" in page.inner_text("main")
    page.screenshot(path=str(stack.shots / "console-audit.png"), full_page=False)


def test_attacker_prompts_execute_nothing(stack: Stack, browser: Browser) -> None:
    page, base = browser.page, stack.console.url
    _sign_in(page, base, "reviewer")
    page.goto(f"{base}/accounts/{XSS_ACCOUNT}")
    prompts = page.locator("#calls pre.prompt").all_inner_texts()
    assert set(XSS) <= set(prompts)  # shown, as text
    _no_script_ran(browser)
    page.screenshot(path=str(stack.shots / "console-account.png"), full_page=False)

    page.goto(f"{base}/clusters")
    page.wait_for_selector("#plot-map .main-svg")
    points = page.evaluate(
        """() => {
          const el = document.getElementById('plot-map');
          const hits = [];
          el.data.forEach((trace, c) => trace.text.forEach((t, p) => {
            if (t.includes('&lt;')) hits.push({curveNumber: c, pointNumber: p});
          }));
          return hits;
        }"""
    )
    assert points, "no XSS prompt was embedded into the cluster map"
    labels = []
    for point in points:
        xy = page.evaluate(
            """(pt) => {
              const el = document.getElementById('plot-map');
              const fl = el._fullLayout, tr = el.data[pt.curveNumber];
              const box = el.querySelector('.nsewdrag').getBoundingClientRect();
              return {x: box.left + fl.xaxis.l2p(tr.x[pt.pointNumber]),
                      y: box.top + fl.yaxis.l2p(tr.y[pt.pointNumber])};
            }""",
            point,
        )
        page.mouse.move(xy["x"], xy["y"])
        page.wait_for_timeout(150)
        labels.append(page.evaluate(
            "(document.querySelector('.hoverlayer') || {}).textContent || ''"))  # fmt: skip
    assert any("<" in label for label in labels), labels  # payloads displayed as literal text
    _no_script_ran(browser)
    page.screenshot(path=str(stack.shots / "console-clusters.png"), full_page=False)

    page.goto(f"{base}/overview")
    page.wait_for_selector("#plot-traffic .main-svg")
    _no_script_ran(browser)


def test_cross_origin_post_is_refused(stack: Stack, browser: Browser) -> None:
    page, base = browser.page, stack.console.url
    _sign_in(page, base, "reviewer")
    with httpx.Client(base_url=base, cookies=_cookies(page)) as client:
        claims_before = client.get("/queue.json", params={"status": "claimed"}).json()["total"]
    # an attacker's page on another origin posts a form at the console while the user is signed in
    page.route(
        "http://attacker.test/**",
        lambda route: route.fulfill(body="<html><body>win a prize</body></html>",
                                    content_type="text/html"),
    )  # fmt: skip
    page.goto("http://attacker.test/")
    with page.expect_navigation() as navigation:
        page.evaluate(
            """(target) => {
              const f = document.createElement('form');
              f.method = 'POST'; f.action = target;
              const i = document.createElement('input');
              i.name = 'targets'; i.value = 'x'; f.appendChild(i);
              document.body.appendChild(f); f.submit();
            }""",
            base + "/api/claims",
        )
    response = navigation.value
    assert response is not None and response.status == 403
    assert "cross-site request refused" in response.text()
    with httpx.Client(base_url=base, cookies=_cookies(page)) as client:
        assert (
            client.get("/queue.json", params={"status": "claimed"}).json()["total"] == claims_before
        )


def _cookies(page: Any) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


def _sign_in_again(page: Any, base: str, username: str) -> None:
    page.context.clear_cookies()
    _sign_in(page, base, username)
