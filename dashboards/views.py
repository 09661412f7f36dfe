"""The data behind each page: one function per page, returning the dict that both the HTML
template and the page's JSON twin get. Viewers get the same shapes with prompt text removed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa

from dashboards import decisions, queries
from dashboards.auth import User
from dashboards.cache import PromptTexts, RunCache
from dashboards.exceptions import NotFound
from dashboards.settings import DashboardsSettings
from guard.state import StateStore
from ingest.warehouse import Warehouse
from policies.enforcement import EnforcementPolicy

BASELINE = "baseline"
HIDDEN = None  # what a viewer gets in place of prompt text


def _prompt(user: User, text: str | None) -> str | None:
    return text if user.can("reviewer") else HIDDEN


def _run_id(wh: Warehouse) -> int:
    run_id = queries.latest_run_id(wh)
    if run_id is None:
        raise NotFound("no detection run yet: wait for the scheduled run or start one")
    return run_id


def _fired(signals: dict[str, Any]) -> list[str]:
    return sorted(n for n, s in signals.items() if float(s.get("contribution", 0)) > 0)


def _age_days(first: datetime | None, now: datetime) -> float | None:
    return None if first is None else round((now - first).total_seconds() / 86400, 3)


# -- overview ------------------------------------------------------------------------------------
def overview(wh: Warehouse, user: User) -> dict[str, Any]:
    run_id = queries.latest_run_id(wh)
    largest: list[dict[str, Any]] = []
    if run_id is not None:
        decided = decisions.latest_decisions(wh)
        largest = sorted(
            (
                {"ring_id": r["ring_id"], "size": r["size"], "score": r["score"]}
                for r in queries.rings(wh, run_id)
                if r["flagged"] and ("ring", r["ring_id"]) not in decided
            ),
            key=lambda r: (-r["size"], -r["score"], r["ring_id"]),
        )[:10]
    return {
        "page": "overview",
        "run_id": run_id,
        "totals": queries.totals(wh),
        "traffic": queries.traffic_by_day(wh),
        "runs": queries.runs(wh),
        "decisions": decisions.decisions_by_day(wh),
        "largest_open_rings": largest,
    }


# -- queue ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class QueueFilter:
    kind: Literal["all", "ring", "account"] = "all"
    min_score: float = 0.0
    min_size: int = 0
    detector: str | None = None
    max_age_days: float | None = None
    status: Literal["open", "claimed", "decided", "dismissed", "all"] = "open"
    page: int = 1
    per_page: int = 50


def queue_items(
    wh: Warehouse, policy: EnforcementPolicy, margin: float, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Every flagged ring and account of the latest run with status, claim and suggestion."""
    run_id = _run_id(wh)
    now = now or datetime.now(UTC)
    decided = decisions.latest_decisions(wh)
    newest = decisions.newest_decisions(wh)  # per account: the newest decision covering it wins
    dismissals = decisions.dismissed(wh)
    held = decisions.claims(wh)
    ring_rows = queries.rings(wh, run_id)
    signals_of = {r["ring_id"]: r["evidence"].get("signals", {}) for r in ring_rows}
    items: list[dict[str, Any]] = []

    def add(
        kind: str,
        target: str,
        ring_id: str | None,
        score: float,
        size: int,
        detectors: list[str],
        first: datetime | None,
        status: str,
    ) -> None:
        band = policy.band_for(min(max(score, 0.0), 1.0))
        items.append(
            {
                "kind": kind,
                "target_id": target,
                "ring_id": ring_id,
                "score": round(score, 4),
                "size": size,
                "detectors": detectors,
                "first_flagged": first,
                "age_days": _age_days(first, now),
                "status": "claimed" if status == "open" and (kind, target) in held else status,
                "claimed_by": held.get((kind, target)),
                "suggested_action": band.action,
                "requires_review": band.requires_review,
            }
        )

    for r in ring_rows:
        if not r["flagged"]:
            continue
        last = decided.get(("ring", r["ring_id"]))
        status = (
            "open" if last is None else ("dismissed" if last["action"] == "dismiss" else "decided")
        )
        add(
            "ring",
            r["ring_id"],
            r["ring_id"],
            r["score"],
            r["size"],
            _fired(signals_of[r["ring_id"]]),
            r["first_flagged"],
            status,
        )
    for a in queries.flagged_accounts(wh, run_id):
        signals = signals_of.get(a["ring_id"] or "", {})
        detectors = _fired(signals) + ([BASELINE] if a["baseline_flagged"] else [])
        key = decisions.evidence_key(a["ring_id"], signals, bool(a["baseline_flagged"]))
        last_action = newest.get(a["account_id"], {}).get("action")
        if last_action not in (None, "dismiss"):
            status = "decided"
        elif any(
            k == key and a["score"] <= s + margin for k, s in dismissals.get(a["account_id"], [])
        ):
            status = "dismissed"
        else:
            status = "open"
        add(
            "account",
            a["account_id"],
            a["ring_id"],
            a["score"],
            a["ring_size"] or 1,
            detectors,
            a["first_flagged"],
            status,
        )
    items.sort(key=lambda i: (-i["score"], i["kind"] != "ring", i["target_id"]))
    return items


def _keep(item: dict[str, Any], f: QueueFilter) -> bool:
    return (
        (f.kind == "all" or item["kind"] == f.kind)
        and item["score"] >= f.min_score
        and item["size"] >= f.min_size
        and (f.detector is None or f.detector in item["detectors"])
        and (f.max_age_days is None or (item["age_days"] or 0) <= f.max_age_days)
        and (f.status == "all" or item["status"] == f.status)
    )


def filtered_items(
    wh: Warehouse, f: QueueFilter, policy: EnforcementPolicy, margin: float
) -> list[dict[str, Any]]:
    """The queue items that pass the filter, highest score first (not paginated)."""
    return [i for i in queue_items(wh, policy, margin) if _keep(i, f)]


def queue(
    wh: Warehouse, user: User, f: QueueFilter, policy: EnforcementPolicy, margin: float
) -> dict[str, Any]:
    items = filtered_items(wh, f, policy, margin)
    start = (f.page - 1) * f.per_page
    detectors = sorted({d for i in items for d in i["detectors"]})
    return {
        "page": "queue",
        "filters": f.__dict__,
        "total": len(items),
        "pages": max(1, -(-len(items) // f.per_page)),
        "items": items[start : start + f.per_page],
        "detectors": detectors,
        "can_decide": user.can("reviewer"),
    }


EXPORT_COLUMNS = (
    "kind",
    "target_id",
    "ring_id",
    "score",
    "size",
    "detectors",
    "first_flagged",
    "age_days",
    "status",
    "claimed_by",
    "suggested_action",
)


def export_table(items: list[dict[str, Any]]) -> pa.Table:
    return pa.table(
        {
            "kind": pa.array([i["kind"] for i in items], pa.string()),
            "target_id": pa.array([i["target_id"] for i in items], pa.string()),
            "ring_id": pa.array([i["ring_id"] for i in items], pa.string()),
            "score": pa.array([i["score"] for i in items], pa.float64()),
            "size": pa.array([i["size"] for i in items], pa.int64()),
            "detectors": pa.array([";".join(i["detectors"]) for i in items], pa.string()),
            "first_flagged": pa.array(
                [i["first_flagged"] for i in items], pa.timestamp("us", "UTC")
            ),
            "age_days": pa.array([i["age_days"] for i in items], pa.float64()),
            "status": pa.array([i["status"] for i in items], pa.string()),
            "claimed_by": pa.array([i["claimed_by"] for i in items], pa.string()),
            "suggested_action": pa.array([i["suggested_action"] for i in items], pa.string()),
        }
    )


def export_bytes(table: pa.Table, fmt: Literal["csv", "parquet"]) -> bytes:
    buffer = io.BytesIO()
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, buffer)
    else:
        import pyarrow.parquet as pq

        pq.write_table(table, buffer)
    return buffer.getvalue()


# -- ring ----------------------------------------------------------------------------------------
def ring_graph(
    members: list[dict[str, Any]], attributes: list[dict[str, Any]], labels: dict[str, str]
) -> dict[str, Any]:
    """Cytoscape elements: member accounts, the shared things and account-thing edges."""
    nodes: list[dict[str, Any]] = [
        {
            "id": f"account:{m['account_id']}",
            "label": m["account_id"],
            "kind": "account",
            "score": m["score"],
            "flagged": m["flagged"],
        }
        for m in members
    ]
    edges: list[dict[str, Any]] = []
    seen: set[str] = set()
    for a in attributes:
        node_id = f"{a['kind']}:{a['val']}"
        if node_id not in seen:
            seen.add(node_id)
            label = labels.get(a["val"], a["val"])
            nodes.append(
                {
                    "id": node_id,
                    "label": label[:60],
                    "kind": a["kind"],
                    "detail": label[:300],
                    "members": a["n"],
                }
            )
        edges.append(
            {
                "id": f"{node_id}|{a['account_id']}",
                "source": f"account:{a['account_id']}",
                "target": node_id,
                "kind": a["kind"],
            }
        )
    return {"nodes": nodes, "edges": edges}


def _unpublished(wh: Warehouse, history: list[dict[str, Any]]) -> list[int]:
    """Decisions in ``history`` that failed to publish and were not republished since."""
    shown = {d["decision_id"] for d in history}
    return [d for d in decisions.unpublished(wh) if d in shown]


def ring_page(
    wh: Warehouse,
    user: User,
    ring_id: str,
    settings: DashboardsSettings,
    store: StateStore,
    prompts: PromptTexts,
) -> dict[str, Any]:
    run_id = _run_id(wh)
    ring = queries.ring(wh, run_id, ring_id)
    if ring is None:
        raise NotFound(f"no ring {ring_id!r} in detection run {run_id}")
    members = queries.ring_members(wh, run_id, ring_id)
    states = store.snapshot()
    for m in members:
        m["state"] = states.account(m["account_id"]).state
    evidence = ring["evidence"]
    templates = evidence.get("top_templates", [])
    labels = {t["template_id"]: t.get("label") or t["template_id"] for t in templates}
    attributes = queries.graph_attributes(wh, run_id, ring_id, settings.graph_max_attributes)
    template_ids = sorted({a["val"] for a in attributes if a["kind"] == "template"})
    for cluster in queries.clusters_by_id(wh, template_ids):
        labels.setdefault(cluster["cluster_id"], cluster["label"] or cluster["cluster_id"])
    member_ids = [m["account_id"] for m in members]
    examples = queries.template_examples(wh, [t["template_id"] for t in templates], member_ids)
    top_clusters = queries.ring_clusters(wh, run_id, ring_id, 10)
    example_hashes = queries.cluster_examples(wh, [c["cluster_id"] for c in top_clusters])
    texts = prompts.resolve(wh, [h for hs in example_hashes.values() for h in hs])
    cluster_examples = _examples(user, example_hashes, texts)
    return {
        "page": "ring",
        "run_id": run_id,
        "ring": {k: ring[k] for k in ("ring_id", "size", "score", "flagged")},
        "signals": evidence.get("signals", {}),
        "gates": evidence.get("gates", {}),
        "link_kinds": evidence.get("link_kinds", {}),
        "members": members,
        "graph": ring_graph(members, attributes, labels),
        "timeline": queries.ring_timeline(wh, run_id, ring_id),
        "top_templates": [
            {**t, "examples": [_prompt(user, p) for p in examples.get(t["template_id"], [])]}
            for t in templates
        ],
        "top_clusters": [
            {**c, "examples": cluster_examples.get(c["cluster_id"], [])} for c in top_clusters
        ],
        "decisions": (history := decisions.audit_log(wh, target=("ring", ring_id))),
        "unpublished": _unpublished(wh, history),
        "can_decide": user.can("reviewer"),
        "prompts_hidden": not user.can("reviewer"),
    }


# -- account -------------------------------------------------------------------------------------
def account_page(wh: Warehouse, user: User, account_id: str, store: StateStore) -> dict[str, Any]:
    run_id = _run_id(wh)
    profile = queries.account_profile(wh, account_id)
    flag = queries.account_flag(wh, run_id, account_id)
    if profile is None and flag is None:
        raise NotFound(f"no account {account_id!r}")
    ring = queries.ring(wh, run_id, flag["ring_id"]) if flag and flag["ring_id"] else None
    signals = ring["evidence"].get("signals", {}) if ring else {}
    calls = queries.recent_calls(wh, account_id, 50)
    for call in calls:
        call["prompt"] = _prompt(user, call["prompt"])
    evidence = flag["evidence"] if flag else {}
    return {
        "page": "account",
        "run_id": run_id,
        "account_id": account_id,
        "profile": profile,
        "state": store.get_account(account_id).state,
        "flag": None
        if flag is None
        else {
            k: flag[k]
            for k in (
                "ring_id",
                "score",
                "flagged",
                "baseline_score",
                "baseline_flagged",
                "reasons",
            )
        },
        "signals": [{"signal": name, **values} for name, values in sorted(signals.items())],
        "account_evidence": evidence.get("account", {}),
        "fit": evidence.get("fit"),
        "features": queries.account_features(wh, account_id),
        "recent_calls": calls,
        "linked_accounts": queries.linked_accounts(wh, account_id, 20),
        "decisions": (history := decisions.audit_log(wh, account_id=account_id)),
        "unpublished": _unpublished(wh, history),
        "can_decide": user.can("reviewer"),
        "prompts_hidden": not user.can("reviewer"),
    }


# -- clusters ------------------------------------------------------------------------------------
def cluster_map(sample: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """2-D PCA projection of the sampled embeddings (empty when fewer than 3), by prompt hash."""
    if len(sample) < 3:
        return []
    import numpy as np
    from sklearn.decomposition import PCA

    vectors = np.asarray([row["vector"] for row in sample], dtype=np.float32)
    xy = PCA(n_components=2, random_state=0).fit_transform(vectors)
    return [
        {
            "x": round(float(x), 5),
            "y": round(float(y), 5),
            "cluster_id": row["cluster_id"],
            "prompt_hash": row["prompt_hash"],
        }
        for (x, y), row in zip(xy, sample, strict=True)
    ]


def _examples(
    user: User, hashes: dict[str, list[str]], texts: dict[str, str]
) -> dict[str, list[str | None]]:
    """Example prompts per cluster (None for each when the user may not read prompts)."""
    return {c: [_prompt(user, texts[h]) for h in hs if h in texts] for c, hs in hashes.items()}


def clusters_page(
    wh: Warehouse,
    user: User,
    kind: str | None,
    sample: int,
    maps: RunCache,
    prompts: PromptTexts,
) -> dict[str, Any]:
    if kind not in (None, "template", "embedding"):
        raise NotFound(f"unknown cluster kind {kind!r}: use template or embedding")
    listed = queries.clusters(wh, kind, 100)
    example_hashes = queries.cluster_examples(wh, [c["cluster_id"] for c in listed])
    run_id = queries.latest_run_id(wh)
    if run_id is None:  # embeddings come with a run: nothing to map or cache yet
        projected: list[dict[str, Any]] = []
    else:  # a run's embeddings never change: fit its map once
        key = ("cluster_map", run_id, sample)
        projected = maps.get(key, lambda: cluster_map(queries.embedding_sample(wh, sample)))
    wanted = [h for hs in example_hashes.values() for h in hs]
    texts = prompts.resolve(wh, wanted + [p["prompt_hash"] for p in projected])
    examples = _examples(user, example_hashes, texts)
    points = [
        {
            "x": p["x"],
            "y": p["y"],
            "cluster_id": p["cluster_id"],
            "prompt": _prompt(user, texts.get(p["prompt_hash"])),
        }
        for p in projected
    ]
    return {
        "page": "clusters",
        "kind": kind,
        "clusters": [{**c, "examples": examples.get(c["cluster_id"], [])} for c in listed],
        "map": points,
        "prompts_hidden": not user.can("reviewer"),
    }
