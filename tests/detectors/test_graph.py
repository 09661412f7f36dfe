"""The account graph: networks, rarity-weighted edges, bounded groups, deterministic communities."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from detectors import sql
from detectors.engine import run
from detectors.graph import build_graph, communities, ip_network
from ingest.warehouse import Warehouse
from policies.detection import load_detection_policy
from tests.detectors.helpers import T0, add_account, add_call

POLICY = load_detection_policy().model


def test_networks_are_slash_24_and_slash_48() -> None:
    assert ip_network("203.0.113.77") == "203.0.113.0/24"
    assert ip_network("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert ip_network("::ffff:198.51.100.9") == "198.51.100.0/24"
    assert ip_network("not an address") is None


def _content_free_scope(wh: Warehouse) -> None:
    """The temporary tables the graph reads, with no templates or clusters."""
    run(wh, sql.scope_sql(False))
    run(wh, sql.scope_accounts_sql(False))
    run(
        wh,
        "CREATE TEMP TABLE enriched AS SELECT account_id, NULL::VARCHAR AS template_id, "
        "NULL::VARCHAR AS cluster_id FROM scope",
    )


def _edges(wh: Warehouse) -> dict[tuple[str, str], dict[str, float]]:
    return {
        (s, d): json.loads(c)
        for s, d, c in wh.fetchall("SELECT src, dst, contributions FROM graph_edges")
    }


def test_rare_shared_things_link_accounts_and_common_ones_do_not(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        # 40 accounts on one popular user agent; two of them also share a card and a /24.
        for i in range(40):
            add_account(
                wh,
                f"a{i:02d}",
                created=T0 - timedelta(days=30 * i),
                payment="card-shared" if i < 2 else f"card-{i}",
            )
            ip = f"198.51.100.{i + 1}" if i < 2 else f"10.{i}.0.1"
            add_call(wh, f"c{i}", f"a{i:02d}", f"hello {i}", client_ip=ip, user_agent="popular/1.0")
        _content_free_scope(wh)
        tight = POLICY.model_copy(
            update={"graph": POLICY.graph.model_copy(update={"max_group_accounts": 30})}
        )
        build_graph(wh, tight, n_accounts=40)
        edges = _edges(wh)
    assert set(edges) == {("a00", "a01")}  # the user agent (40 > 30 accounts) links no one
    shared = edges[("a00", "a01")]
    assert shared["payment"] == POLICY.graph.weights.payment  # shared by 2 of 40: rarity 1
    assert shared["client_net"] == POLICY.graph.weights.client_net


def test_large_groups_stay_connected_with_linear_edges(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        for i in range(200):
            add_account(wh, f"a{i:03d}", payment="one-card-for-all")
            add_call(wh, f"c{i}", f"a{i:03d}", f"hi {i}")
        _content_free_scope(wh)
        n_edges = build_graph(wh, POLICY, n_accounts=10_000)
        edges = wh.fetchall("SELECT src, dst, weight FROM graph_edges")
    assert n_edges == 200 * POLICY.graph.neighbours  # not 200 * 199 / 2
    groups = communities(edges, min_weight=0.0, resolution=0.1, min_size=3)
    assert [len(g) for g in groups] == [200]


def test_communities_are_deterministic_and_respect_min_weight() -> None:
    edges = [("a", "b", 1.0), ("b", "c", 1.0), ("a", "c", 1.0), ("c", "d", 0.1)]
    edges += [("x", "y", 1.0), ("y", "z", 1.0), ("x", "z", 1.0)]
    first = communities(edges, min_weight=0.5, resolution=1.0, min_size=3)
    again = communities(list(reversed(edges)), min_weight=0.5, resolution=1.0, min_size=3)
    assert first == again == [["a", "b", "c"], ["x", "y", "z"]]
