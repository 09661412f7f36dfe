"""The account graph: accounts linked by what they share, weighted by how rare it is.

Links come from shared payment fingerprints, sign-up and client networks (/24 for IPv4, /48 for
IPv6), user agents, sign-up waves, templates and embedding clusters (all in SQL, see
:func:`detectors.sql.graph_edges_sql`), and synchronised activity between accounts already linked.
Communities of the graph (Louvain, seeded; igraph's C implementation) are the candidate rings.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable
from functools import lru_cache

import igraph
import pyarrow as pa

from detectors import sql
from detectors.engine import register, run
from ingest.warehouse import Warehouse
from policies.detection import DetectionPolicy


@lru_cache(maxsize=1 << 16)
def ip_network(address: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of ``address``; None when it is not an address."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def graph_params(policy: DetectionPolicy, n_accounts: int) -> dict[str, object]:
    graph = policy.graph
    params: dict[str, object] = {
        "max_group": graph.max_group_accounts,
        "neighbours": graph.neighbours,
        "n_accounts": float(max(n_accounts, 2)),
        "window_minutes": graph.signup_wave.window_minutes,
        "wave_min": graph.signup_wave.min_accounts,
        "wave_ratio": graph.signup_wave.min_ratio,
        "sync_minutes": graph.sync_bucket_minutes,
    }
    for kind, weight in graph.weights.model_dump().items():
        params[f"w_{kind}"] = weight
    return params


def _fill_ip_nets(wh: Warehouse) -> None:
    ips = wh.fetchall(
        "SELECT DISTINCT ip FROM (SELECT client_ip AS ip FROM scope UNION ALL "
        "SELECT signup_ip FROM accounts) WHERE ip IS NOT NULL"
    )
    pairs = [(ip, ip_network(ip)) for (ip,) in ips]
    known = [(ip, net) for ip, net in pairs if net is not None]
    register(
        wh,
        "ip_nets",
        pa.table(
            {
                "ip": pa.array([ip for ip, _ in known], pa.string()),
                "net": pa.array([net for _, net in known], pa.string()),
            }
        ),
    )


def build_graph(wh: Warehouse, policy: DetectionPolicy, n_accounts: int) -> int:
    """Rebuild ``graph_edges``; return the number of linked pairs."""
    params = graph_params(policy, n_accounts)
    _fill_ip_nets(wh)
    run(wh, sql.wave_keys_sql(), params)
    run(wh, sql.account_keys_sql(), params)
    run(wh, sql.graph_edges_sql(), params)
    run(wh, sql.sync_edges_sql(), params)
    wh.execute("DELETE FROM graph_edges")
    run(wh, sql.collapse_edges_sql(), params)
    for table in ("raw_edges", "account_keys", "wave_keys", "ip_nets"):
        wh.execute(f"DROP TABLE IF EXISTS {table}")
    return int(wh.scalar("SELECT count(*) FROM graph_edges"))


def communities(
    edges: Iterable[tuple[str, str, float]],
    *,
    min_weight: float,
    resolution: float,
    min_size: int,
    seed: int = 0,
) -> list[list[str]]:
    """Louvain communities of the graph of edges at or above ``min_weight``, largest first.

    Deterministic: vertices are numbered in sorted order, edges added in sorted order, and the
    algorithm draws from its own generator seeded with ``seed``.
    """
    kept = sorted((s, d, w) for s, d, w in edges if w >= min_weight)
    if not kept:
        return []
    names = sorted({s for s, _, _ in kept} | {d for _, d, _ in kept})
    index = {name: i for i, name in enumerate(names)}
    graph = igraph.Graph(
        n=len(names), edges=[(index[s], index[d]) for s, d, _ in kept], directed=False
    )
    graph.es["weight"] = [w for _, _, w in kept]
    igraph.set_random_number_generator(random.Random(seed))
    try:
        found = graph.community_multilevel(weights="weight", resolution=resolution)
    finally:
        igraph.set_random_number_generator(random)
    groups = [sorted(names[v] for v in c) for c in found if len(c) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups
