"""Every page's JSON twin and template context; viewers never see prompt text; XSS stays inert."""

from __future__ import annotations

import csv
import html as htmlmod
import io
import json
import re

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from dashboards import queries
from dashboards.cache import PromptTexts, RunCache
from dashboards.control import ControlPlane
from detectors import results
from guard.exceptions import StateError
from guard.state import AccountRecord, FileStateStore
from tests.dashboards.conftest import XSS, World, sign_in


def test_page_and_json_twin_share_their_data(client: TestClient, world: World) -> None:
    sign_in(client, "reviewer")
    for path, template in (
        ("/overview", "overview.html"),
        ("/queue", "queue.html"),
        (f"/rings/{world.ring_id}", "ring.html"),
        (f"/accounts/{world.members[0]}", "account.html"),
        ("/clusters", "clusters.html"),
    ):
        page = client.get(path)
        assert page.status_code == 200, path
        assert page.template.name == template  # type: ignore[attr-defined]
        twin = client.get(path + ".json").json()
        embedded = re.search(
            r'<script type="application/json" id="page-data">(.*?)</script>', page.text, re.S
        )
        assert embedded is not None
        assert json.loads(embedded[1]) == twin, path


def test_overview_counts_traffic_runs_and_largest_open_rings(
    client: TestClient, world: World
) -> None:
    sign_in(client, "viewer")
    data = client.get("/overview.json").json()
    assert data["totals"]["calls"] == sum(d["calls"] for d in data["traffic"])
    assert [r["run_id"] for r in data["runs"]] == [1]
    assert data["largest_open_rings"][0]["ring_id"] == world.ring_id


def test_queue_ranks_the_ring_first_and_lists_its_flagged_members(
    client: TestClient, world: World
) -> None:
    sign_in(client, "viewer")
    data = client.get("/queue.json", params={"per_page": 1000}).json()
    first = data["items"][0]
    assert (first["kind"], first["target_id"]) == ("ring", world.ring_id)
    accounts = {i["target_id"] for i in data["items"] if i["kind"] == "account"}
    assert set(world.members) <= accounts
    assert all(
        a["score"] >= b["score"] for a, b in zip(data["items"], data["items"][1:], strict=False)
    )
    assert first["suggested_action"] in ("throttle", "restrict", "suspend")


@pytest.mark.parametrize(
    ("params", "check"),
    [
        ({"kind": "ring"}, lambda i: i["kind"] == "ring"),
        ({"kind": "account"}, lambda i: i["kind"] == "account"),
        ({"min_score": 0.65}, lambda i: i["score"] >= 0.65),
        ({"min_size": 5}, lambda i: i["size"] >= 5),
        ({"detector": "templates"}, lambda i: "templates" in i["detectors"]),
        ({"max_age_days": 1}, lambda i: i["age_days"] <= 1),
    ],
)
def test_queue_filters(client: TestClient, params: dict[str, object], check: object) -> None:
    sign_in(client, "viewer")
    everything = client.get("/queue.json", params={"per_page": 1000}).json()
    data = client.get("/queue.json", params={**params, "per_page": 1000}).json()
    assert data["items"], params
    assert all(check(i) for i in data["items"])  # type: ignore[operator]
    assert data["total"] == sum(1 for i in everything["items"] if check(i))  # type: ignore[operator]


def test_queue_rejects_bad_filters(client: TestClient) -> None:
    sign_in(client, "viewer")
    assert client.get("/queue.json", params={"min_score": 2}).status_code == 422
    assert client.get("/queue.json", params={"kind": "cluster"}).status_code == 422
    assert client.get("/queue.json", params={"page": 0}).status_code == 422
    assert client.get("/queue.xml").status_code == 404


def test_queue_paginates_without_overlap(client: TestClient) -> None:
    sign_in(client, "viewer")
    total = client.get("/queue.json", params={"per_page": 1000}).json()["total"]
    seen: list[str] = []
    page = 1
    while True:
        data = client.get("/queue.json", params={"per_page": 7, "page": page}).json()
        seen += [f"{i['kind']}:{i['target_id']}" for i in data["items"]]
        if page >= data["pages"]:
            break
        page += 1
    assert len(seen) == len(set(seen)) == total > 7


def test_queue_exports_csv_and_parquet_with_the_same_rows(client: TestClient) -> None:
    sign_in(client, "viewer")
    items = client.get("/queue.json", params={"per_page": 1000, "kind": "account"}).json()["items"]
    as_csv = client.get("/queue.csv", params={"kind": "account"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["target_id"] for r in rows] == [i["target_id"] for i in items]
    table = pq.read_table(
        io.BytesIO(client.get("/queue.parquet", params={"kind": "account"}).content)
    )
    assert table.column("target_id").to_pylist() == [i["target_id"] for i in items]
    assert table.column("score").to_pylist() == [i["score"] for i in items]


def test_ring_page_graph_links_members_through_shared_things(
    client: TestClient, world: World
) -> None:
    sign_in(client, "reviewer")
    data = client.get(f"/rings/{world.ring_id}.json").json()
    nodes, edges = data["graph"]["nodes"], data["graph"]["edges"]
    ids = {n["id"] for n in nodes}
    accounts = [n for n in nodes if n["kind"] == "account"]
    shared = [n for n in nodes if n["kind"] != "account"]
    assert len(accounts) == len(data["members"]) == data["ring"]["size"]
    assert shared and all(n["members"] >= 2 for n in shared)
    assert all(e["source"] in ids and e["target"] in ids for e in edges)
    assert len(ids) == len(nodes)
    kinds = {n["kind"] for n in shared}
    assert {"template", "client_ip"} <= kinds
    assert sum(t["calls"] for t in data["timeline"]) > 0
    assert data["top_templates"] and all(t["examples"] for t in data["top_templates"])
    assert sum(s["contribution"] for s in data["signals"].values()) == pytest.approx(
        data["ring"]["score"], abs=0.01
    )


def test_unknown_ring_and_account_are_404(client: TestClient) -> None:
    sign_in(client, "viewer")
    assert client.get("/rings/ring-nope.json").status_code == 404
    assert client.get("/accounts/acct_nope.json").status_code == 404


def test_account_page_shows_evidence_calls_links_and_history(
    client: TestClient, world: World
) -> None:
    sign_in(client, "reviewer")
    data = client.get(f"/accounts/{world.xss_account}.json").json()
    assert data["flag"]["ring_id"] == world.ring_id
    assert {s["signal"] for s in data["signals"]} >= {"templates", "operational"}
    assert all({"value", "weight", "contribution"} <= set(s) for s in data["signals"])
    assert data["recent_calls"][0]["prompt"] in XSS
    assert data["linked_accounts"] and all(
        link["contributions"] for link in data["linked_accounts"]
    )
    assert data["state"] == "active" and data["decisions"] == []


def test_viewers_get_no_prompt_text(client: TestClient, world: World) -> None:
    sign_in(client, "viewer")
    account = client.get(f"/accounts/{world.xss_account}.json").json()
    assert account["prompts_hidden"] and account["recent_calls"]
    assert all(c["prompt"] is None for c in account["recent_calls"])
    ring = client.get(f"/rings/{world.ring_id}.json").json()
    assert all(p is None for t in ring["top_templates"] for p in t["examples"])
    clusters = client.get("/clusters.json").json()
    assert all(p["prompt"] is None for p in clusters["map"])
    assert all(e is None for c in clusters["clusters"] for e in c["examples"])
    page = client.get(f"/accounts/{world.xss_account}").text
    assert "hidden for viewers" in page and '<pre class="prompt">' not in page


def test_cluster_explorer_maps_embeddings_in_two_dimensions(client: TestClient) -> None:
    sign_in(client, "reviewer")
    data = client.get("/clusters.json").json()
    assert len(data["map"]) == 62
    assert {p["cluster_id"] for p in data["map"]} == {"e0", "e1", "e2"}
    # PCA keeps the three planted clusters apart: each point is nearer its own centre
    centres = {}
    for cid in ("e0", "e1", "e2"):
        pts = [(p["x"], p["y"]) for p in data["map"] if p["cluster_id"] == cid]
        centres[cid] = (sum(x for x, _ in pts) / len(pts), sum(y for _, y in pts) / len(pts))
    for p in data["map"]:
        nearest = min(
            centres, key=lambda c: (p["x"] - centres[c][0]) ** 2 + (p["y"] - centres[c][1]) ** 2
        )
        assert nearest == p["cluster_id"]
    assert (
        data["clusters"] and data["clusters"][0]["suspicion"] >= data["clusters"][-1]["suspicion"]
    )
    assert client.get("/clusters.json", params={"kind": "template"}).json()["clusters"]
    assert client.get("/clusters.json", params={"kind": "bogus"}).status_code == 404


def test_attacker_prompts_render_as_inert_text(client: TestClient, world: World) -> None:
    sign_in(client, "reviewer")
    for path in (f"/accounts/{world.xss_account}", "/clusters", f"/rings/{world.ring_id}"):
        html = client.get(path).text
        for payload in XSS:
            assert payload not in html, (path, payload)
        # only the page's own script elements exist; the embedded JSON cannot close its element
        scripts = re.findall(r"<script[^>]*>", html)
        assert all(
            s.startswith(('<script type="application/json"', '<script src="/static/'))
            for s in scripts
        )
    html = client.get(f"/accounts/{world.xss_account}").text
    assert "&lt;script&gt;alert(&#39;xss-script&#39;)&lt;/script&gt;" in html
    assert "\\u003c/script\\u003e" in html


def test_static_assets_are_served_by_the_app(client: TestClient) -> None:
    for path in ("/static/app.js", "/static/pages.js", "/static/app.css",
                 "/static/vendor/cytoscape/cytoscape.min.js",
                 "/static/vendor/plotly/plotly-basic.min.js"):  # fmt: skip
        assert client.get(path).status_code == 200, path
    sign_in(client, "viewer")
    html = client.get("/overview").text
    assert "http://" not in html.split("<main>")[0] and "https://" not in html


def _href(html: str, anchor: str) -> str:
    found = re.search(rf'<a (?:id|class)="{anchor}" href="([^"]*)"', html)
    assert found is not None, anchor
    return htmlmod.unescape(found[1])


def test_queue_pages_and_exports_keep_the_filters(client: TestClient) -> None:
    sign_in(client, "viewer")
    params = {"kind": "account", "min_score": 0.5, "per_page": 3}
    wanted = client.get("/queue.json", params={**params, "per_page": 1000}).json()["items"]
    assert len(wanted) > 3
    everything = client.get("/queue.json", params={"per_page": 1000}).json()["total"]
    assert everything > len(wanted)
    page_one = client.get("/queue", params=params).text
    next_link = _href(page_one, "next")
    assert next_link.startswith("/queue?")
    page_two = client.get(next_link)
    assert page_two.context["data"]["filters"] == {  # type: ignore[attr-defined]
        "kind": "account", "min_score": 0.5, "min_size": 0, "detector": None,
        "max_age_days": None, "status": "open", "page": 2, "per_page": 3,
    }  # fmt: skip
    assert (
        [i["target_id"] for i in page_two.context["data"]["items"]]
        == [  # type: ignore[attr-defined]
            i["target_id"] for i in wanted[3:6]
        ]
    )
    prev_link = _href(page_two.text, "prev")
    assert client.get(prev_link).context["data"]["filters"]["page"] == 1  # type: ignore[attr-defined]
    for anchor in ("export-csv", "export-parquet"):
        exported = client.get(_href(page_two.text, anchor))
        assert exported.status_code == 200
        if anchor == "export-csv":
            rows = list(csv.DictReader(io.StringIO(exported.text)))
        else:
            rows = pq.read_table(io.BytesIO(exported.content)).to_pylist()
        assert [r["target_id"] for r in rows] == [i["target_id"] for i in wanted]


def test_queue_links_encode_filter_values(client: TestClient) -> None:
    sign_in(client, "viewer")
    html = client.get("/queue", params={"detector": "a&b=c d", "status": "all"}).text
    link = _href(html, "export-csv")
    assert "detector=a%26b%3Dc+d" in link or "detector=a%26b%3Dc%20d" in link
    assert client.get(link).status_code == 200


def _decision_controls(html: str) -> list[str]:
    return [
        marker
        for marker in ('<form class="decide"', 'id="bulk"', 'class="pick"', 'class="republish"')
        if marker in html
    ]


def test_viewers_get_no_decision_controls(client: TestClient, world: World) -> None:
    reviewer_csrf = sign_in(client, "reviewer")
    pages = ("/overview", "/queue", f"/rings/{world.ring_id}",
             f"/accounts/{world.members[0]}", "/clusters")  # fmt: skip
    reviewer_controls = {path: _decision_controls(client.get(path).text) for path in pages}
    assert reviewer_controls["/queue"] == ['id="bulk"', 'class="pick"']
    assert reviewer_controls[f"/rings/{world.ring_id}"] == ['<form class="decide"']
    assert reviewer_controls[f"/accounts/{world.members[0]}"] == ['<form class="decide"']
    # a decision that failed to publish: reviewers get a Republish button, viewers only the notice
    control = client.app.state.control  # type: ignore[attr-defined]
    healthy = control.store
    control.store = _DownStore(control.settings.state)
    body = {"targets": [{"kind": "ring", "id": world.ring_id}], "action": "suspend", "reason": "x"}
    headers = {"x-csrf-token": reviewer_csrf}
    assert client.post("/api/decisions", json=body, headers=headers).status_code == 502
    control.store = healthy
    assert 'class="republish"' in client.get(f"/rings/{world.ring_id}").text

    sign_in(client, "viewer")
    for path in pages:
        page = client.get(path)
        assert page.status_code == 200, path
        assert _decision_controls(page.text) == [], path
        assert not page.context["data"].get("can_decide"), path  # type: ignore[attr-defined]
    ring = client.get(f"/rings/{world.ring_id}")
    assert "publishing it to the gateways failed" in ring.text
    assert ring.context["data"]["unpublished"] == [1]  # type: ignore[attr-defined]


class _DownStore(FileStateStore):
    def _put_account(self, record: AccountRecord) -> None:
        raise StateError("down")


def test_the_cluster_map_is_fitted_once_per_detection_run(
    client: TestClient, control: ControlPlane
) -> None:
    sign_in(client, "reviewer")
    first = client.get("/clusters.json").json()
    second = client.get("/clusters.json").json()
    assert first["map"] == second["map"] and len(first["map"]) == 62
    assert control.maps.computed == 1
    assert client.get("/clusters.json", params={"sample": 10}).json()["map"]
    assert control.maps.computed == 2  # another sample size is another projection
    control.detect()  # a new run may embed new prompts: its map is fitted afresh
    client.get("/clusters.json")
    assert control.maps.computed == 3


def test_the_run_cache_is_bounded() -> None:
    cache = RunCache(maxsize=2)
    for key in ("a", "b", "c", "a"):
        cache.get(key, lambda key=key: key.upper())
    assert cache.computed == 4  # "a" was dropped when "c" came in
    assert cache.get("c", lambda: "recomputed") == "C"


def test_prompt_texts_are_hashed_out_of_the_calls_once(
    client: TestClient, world: World, control: ControlPlane
) -> None:
    sign_in(client, "reviewer")
    first = client.get("/clusters.json").json()
    assert control.prompts.scans == 1  # the map's and the examples' hashes, resolved together
    for path in ("/clusters.json", "/clusters.json?kind=embedding"):
        again = client.get(path).json()
    assert control.prompts.scans == 1
    assert [p["prompt"] for p in again["map"]] == [p["prompt"] for p in first["map"]]
    assert set(XSS) <= {p["prompt"] for p in first["map"]}
    with control.cursor() as wh:
        for p in first["map"]:
            assert wh.scalar("SELECT count(*) FROM calls WHERE prompt = $p", {"p": p["prompt"]}), p


def test_prompt_texts_stay_within_their_bound(control: ControlPlane) -> None:
    texts = PromptTexts(max_chars=50)
    with control.cursor() as wh:
        hashes = [h for (h,) in wh.fetchall(
            "SELECT DISTINCT md5(prompt) FROM calls WHERE length(prompt) BETWEEN 20 AND 40 "
            "ORDER BY 1 LIMIT 4")]  # fmt: skip
        found = texts.resolve(wh, hashes)
        assert len(found) == 4 and texts.scans == 1
        assert texts.chars <= 50
        assert texts.resolve(wh, hashes) == found  # evicted ones are looked up again
        assert texts.scans == 2


def test_account_flags_come_from_the_detectors_reader(control: ControlPlane, world: World) -> None:
    with control.cursor() as wh:
        flag = queries.account_flag(wh, 1, world.members[0])
        assert flag == results.account_evidence(wh, world.members[0], 1)
        assert flag is not None and flag["evidence"] and flag["ring_id"] == world.ring_id
        assert queries.account_flag(wh, 1, "acct_nope") is None
        assert queries.account_flag(wh, 99, world.members[0]) is None


def test_the_cluster_map_uses_one_embedding_model(
    client: TestClient, control: ControlPlane
) -> None:
    with control.cursor() as wh:  # a second model's (longer) vectors, embedded later
        wh.execute(
            "INSERT INTO embeddings SELECT prompt_hash, 'other-model', "
            "list_concat(vector, vector), now() + INTERVAL 1 MINUTE FROM embeddings "
            "WHERE model = 'test-model'"
        )
        wh.execute(
            "INSERT INTO prompt_clusters SELECT prompt_hash, 'other-model', 'o' || cluster_id, "
            "similarity FROM prompt_clusters WHERE model = 'test-model'"
        )
    sign_in(client, "reviewer")
    data = client.get("/clusters.json").json()
    assert len(data["map"]) == 62
    assert {p["cluster_id"] for p in data["map"]} == {"oe0", "oe1", "oe2"}
