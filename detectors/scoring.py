"""From candidate rings to verdicts: ring scores, account scores, reasons and evidence.

A ring's signals come from :func:`detectors.sql.ring_signals_sql` (content), the members' sign-up
times (wave) and the edges between members (operational links); :class:`RingScorer` turns them into
a score and a verdict. A member is flagged when its ring is flagged and enough of its own calls look
like the ring's (``accounts.min_fit``). A member linked to the rest of its ring by content alone
(shared templates or clusters, no payment, network, sign-up or timing link) must show the ring's
behaviour itself: enough of its calls must elicit reasoning or use the ring's own templates
(``accounts.min_fit_content_only``); asking about the same topics is not enough, since that is how
innocent users who study the same material are linked. A member that has made no calls yet is
flagged when the policy says so (it is linked to the ring by payment, network or sign-up, never by
content).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from detectors import sql
from detectors.engine import records, register
from detectors.rings import SIGNALS, RingScorer, densest_window_share
from ingest.warehouse import Warehouse
from policies.detection import DetectionPolicy

CONTENT_LINKS = frozenset({"template", "cluster"})
LINKED_SHOWN = 5


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    weight: float
    shared: dict[str, float]

    @property
    def operational_weight(self) -> float:
        """The part of the weight from payment, network, user agent, sign-up or timing."""
        return sum(v for kind, v in self.shared.items() if kind not in CONTENT_LINKS)


def ring_id_of(members: list[str]) -> str:
    """A stable name for a ring: the hash of its first member (rings are disjoint)."""
    return f"ring-{hashlib.md5(min(members).encode()).hexdigest()[:10]}"


def score_rings_and_accounts(
    wh: Warehouse, rules: DetectionPolicy, groups: list[list[str]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Score every candidate ring and every account in scope; return (rings, accounts)."""
    ring_ids = [ring_id_of(group) for group in groups]
    member_of = {a: ring_ids[i] for i, group in enumerate(groups) for a in group}
    register(
        wh,
        "members",
        pa.table(
            {
                "account_id": pa.array(list(member_of), pa.string()),
                "ring_id": pa.array(list(member_of.values()), pa.string()),
            }
        ),
    )
    per_member = records(
        wh,
        sql.ring_signals_sql(),
        {
            "own_share": rules.rings.characteristic_share,
            "popular_share": rules.rings.popular_question_share,
        },
    )
    by_ring: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in per_member:
        by_ring[row["ring_id"]].append(row)
    templates: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in records(wh, sql.ring_templates_sql()):
        templates[row["ring_id"]].append({k: v for k, v in row.items() if k != "ring_id"})
    created = {
        r[0]: r[1]
        for r in wh.fetchall(
            "SELECT account_id, epoch(created_at) FROM accounts "
            "SEMI JOIN members USING (account_id)"
        )
    }
    edges = _member_edges(wh, member_of)

    operational_members: set[str] = set()
    for edge in edges:
        if edge.operational_weight >= rules.rings.min_operational_link:
            operational_members.update((edge.src, edge.dst))
    signal_rows = [
        _ring_signals(groups[i], by_ring[ring_id], created, operational_members, rules)
        for i, ring_id in enumerate(ring_ids)
    ]
    matrix = np.array(signal_rows, dtype=float).reshape(-1, len(SIGNALS))
    scorer = RingScorer(
        weights=rules.rings.weights.model_dump(),
        threshold=rules.rings.threshold,
        min_coverage=rules.rings.min_coverage,
        min_operational=rules.rings.min_operational,
    ).fit(matrix)
    scores = scorer.score_samples(matrix)
    verdicts = scorer.predict(matrix)
    contributions = scorer.contributions(matrix)

    rings = []
    for i, ring_id in enumerate(ring_ids):
        kinds: dict[str, float] = defaultdict(float)
        for edge in edges:
            if member_of[edge.src] == ring_id:
                for kind, value in edge.shared.items():
                    kinds[kind] += value
        values = dict(zip(SIGNALS, signal_rows[i], strict=True))
        rings.append(
            {
                "ring_id": ring_id,
                "size": len(groups[i]),
                "score": round(float(scores[i]), 4),
                "flagged": bool(verdicts[i]),
                "evidence": {
                    "signals": {
                        name: {
                            "value": round(values[name], 4),
                            "weight": round(float(scorer.weights_[j]), 4),
                            "contribution": round(float(contributions[i][j]), 4),
                        }
                        for j, name in enumerate(SIGNALS)
                    },
                    "gates": {
                        "coverage": {
                            "value": round(values["coverage"], 4),
                            "minimum": rules.rings.min_coverage,
                            "passed": values["coverage"] >= rules.rings.min_coverage,
                        },
                        "operational": {
                            "value": round(values["operational"], 4),
                            "minimum": rules.rings.min_operational,
                            "passed": values["operational"] >= rules.rings.min_operational,
                        },
                    },
                    "n_calls": int(sum(r["n_calls"] for r in by_ring[ring_id])),
                    "link_kinds": {k: round(v, 3) for k, v in sorted(kinds.items())},
                    "top_templates": templates.get(ring_id, []),
                    "members_sample": groups[i][:20],
                },
            }
        )
    accounts = _accounts(wh, rules, rings, member_of, per_member, edges, operational_members)
    return rings, accounts


def _ring_signals(
    members: list[str],
    rows: list[dict[str, Any]],
    created: dict[str, float | None],
    operational_members: set[str],
    rules: DetectionPolicy,
) -> list[float]:
    """The ring's signals in ``SIGNALS`` order.

    Content signals are the share of members with calls that take part: at least ``min_fit`` of the
    member's calls elicit reasoning (use the ring's own templates, clusters). Each account counts
    once however busy, and cover traffic mixed into a member's calls does not dilute it. Coverage
    is over the calls of interest; the wave and operational links are over all members.
    """
    threshold = rules.accounts.min_fit

    def mean_share(column: str) -> float:
        shares = [r[column] / r["n_calls"] >= threshold for r in rows if r["n_calls"]]
        return float(np.mean(shares)) if shares else 0.0

    interest = sum(r["n_interest"] for r in rows)
    coverage = 1.0 - sum(r["n_popular"] for r in rows) / interest if interest else 0.0
    times = np.array(
        [np.nan if created.get(a) is None else float(created[a] or 0.0) for a in members]
    )
    values = {
        "reasoning": mean_share("n_reasoning"),
        "templates": mean_share("n_own_template"),
        "coverage": coverage,
        "signup_wave": densest_window_share(times, rules.rings.wave_window_hours * 3600),
        "clusters": mean_share("n_own_cluster"),
        "operational": sum(a in operational_members for a in members) / len(members),
    }
    return [float(values[name]) for name in SIGNALS]


def _member_edges(wh: Warehouse, member_of: dict[str, str]) -> list[Edge]:
    """Edges whose two ends are in the same candidate ring."""
    rows = wh.fetchall(
        "SELECT e.src, e.dst, e.weight, e.contributions FROM graph_edges AS e "
        "JOIN members AS a ON a.account_id = e.src "
        "JOIN members AS b ON b.account_id = e.dst AND b.ring_id = a.ring_id "
        "ORDER BY e.src, e.dst"
    )
    return [Edge(s, d, float(w), json.loads(c)) for s, d, w, c in rows]


def _linked(edges: list[Edge]) -> dict[str, list[dict[str, Any]]]:
    """For each ring member, its strongest links to other members of the same ring."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for edge in edges:
        for me, other in ((edge.src, edge.dst), (edge.dst, edge.src)):
            out[me].append(
                {"account_id": other, "weight": round(edge.weight, 4), "shared": edge.shared}
            )
    for me, links in out.items():
        links.sort(key=lambda link: (-link["weight"], link["account_id"]))
        out[me] = links[:LINKED_SHOWN]
    return out


def _accounts(
    wh: Warehouse,
    rules: DetectionPolicy,
    rings: list[dict[str, Any]],
    member_of: dict[str, str],
    per_member: list[dict[str, Any]],
    edges: list[Edge],
    operational_members: set[str],
) -> list[dict[str, Any]]:
    features = {r["account_id"]: r for r in records(wh, "SELECT * FROM account_features")}
    ring_by_id = {r["ring_id"]: r for r in rings}
    fit = {r["account_id"]: r["n_fit"] / r["n_calls"] for r in per_member if r["n_calls"]}
    interest = {r["account_id"]: r["n_interest"] / r["n_calls"] for r in per_member if r["n_calls"]}
    linked = _linked(edges)
    out = []
    for account_id in sorted(set(features) | set(member_of)):
        feats = features.get(account_id)
        baseline = {
            "prada_score": feats["prada_score"] if feats else None,
            "prada_flagged": bool(feats and feats["prada_flagged"]),
        }
        own = _own_signals(feats)
        behaviour = float(own.get("behaviour_score") or 0.0)
        ring_id = member_of.get(account_id)
        if ring_id is None:
            out.append(
                {
                    "account_id": account_id,
                    "ring_id": None,
                    "score": round(0.5 * behaviour, 4),
                    "flagged": False,
                    "baseline": baseline,
                    "reasons": ["not linked to a candidate ring"],
                    "evidence": {"account": own, "baseline": baseline},
                }
            )
            continue
        ring = ring_by_id[ring_id]
        dormant = feats is None
        account_fit = 1.0 if dormant else fit.get(account_id, 0.0)
        content_only = not dormant and account_id not in operational_members
        behaviour_share = interest.get(account_id, 0.0)
        if dormant:
            flagged = (
                ring["flagged"]
                and rules.accounts.flag_dormant_members
                and account_id in operational_members
            )
        else:
            flagged = ring["flagged"] and account_fit >= rules.accounts.min_fit
            if content_only:
                flagged = flagged and behaviour_share >= rules.accounts.min_fit_content_only
        reasons = _reasons(ring, account_fit, dormant, linked.get(account_id, []), rules)
        if content_only:
            reasons.append(
                f"linked by content only: {behaviour_share:.0%} of its calls elicit reasoning or "
                f"use the ring's templates (needs {rules.accounts.min_fit_content_only:.0%})"
            )
        out.append(
            {
                "account_id": account_id,
                "ring_id": ring_id,
                "score": round(float(ring["score"]) * (0.5 + 0.5 * account_fit), 4),
                "flagged": bool(flagged),
                "baseline": baseline,
                "reasons": reasons,
                "evidence": {
                    "ring": {k: ring[k] for k in ("ring_id", "size", "score", "flagged")},
                    "fit": None if dormant else round(account_fit, 4),
                    "min_fit": rules.accounts.min_fit,
                    "content_only": content_only,
                    "behaviour_share": None if dormant else round(behaviour_share, 4),
                    "min_fit_content_only": rules.accounts.min_fit_content_only,
                    "dormant": dormant,
                    "account": own,
                    "linked_accounts": linked.get(account_id, []),
                    "baseline": baseline,
                },
            }
        )
    return out


def _own_signals(feats: dict[str, Any] | None) -> dict[str, Any]:
    if feats is None:
        return {"n_calls": 0}
    return {
        "n_calls": feats["n_calls"],
        "reasoning_rate": round(float(feats["reasoning_rate"]), 4),
        "templated_share": round(float(feats["templated_share"]), 4),
        "question_dup_share": round(float(feats["question_dup_share"]), 4),
        "calls_per_active_day": round(float(feats["calls_per_active_day"]), 2),
        "active_hours": feats["active_hours"],
        "days_to_heavy_use": feats["days_to_heavy_use"],
        "behaviour_score": round(float(feats["behaviour_score"] or 0.0), 4),
    }


def _reasons(
    ring: dict[str, Any],
    fit: float,
    dormant: bool,
    links: list[dict[str, Any]],
    rules: DetectionPolicy,
) -> list[str]:
    evidence = ring["evidence"]
    top = sorted(evidence["signals"].items(), key=lambda item: -item[1]["contribution"])[:2]
    reasons = [
        f"member of {ring['ring_id']} ({ring['size']} accounts, ring score {ring['score']:.2f})",
        *(f"ring {name}: {s['value']:.0%} (adds {s['contribution']:.2f})" for name, s in top),
    ]
    if dormant:
        reasons.append("no calls yet: linked to the ring by payment, network or sign-up")
    else:
        reasons.append(
            f"{fit:.0%} of its calls look like the ring's (needs {rules.accounts.min_fit:.0%})"
        )
    for name, gate in evidence["gates"].items():
        if not gate["passed"]:
            reasons.append(f"ring {name} {gate['value']:.0%} is below {gate['minimum']:.0%}")
    if links:
        kinds = sorted({k for link in links for k in link["shared"]})
        reasons.append(f"linked to ring members by {', '.join(kinds)}")
    return reasons


def write_verdicts(
    wh: Warehouse, run_id: int, rings: list[dict[str, Any]], accounts: list[dict[str, Any]]
) -> None:
    """Append the run's rings and account verdicts."""
    ring_table = pa.table(
        {
            "run_id": pa.array([run_id] * len(rings), pa.int64()),
            "ring_id": pa.array([r["ring_id"] for r in rings], pa.string()),
            "size": pa.array([r["size"] for r in rings], pa.int64()),
            "score": pa.array([r["score"] for r in rings], pa.float64()),
            "flagged": pa.array([r["flagged"] for r in rings], pa.bool_()),
            "evidence": pa.array([json.dumps(r["evidence"]) for r in rings], pa.string()),
        }
    )
    flag_table = pa.table(
        {
            "run_id": pa.array([run_id] * len(accounts), pa.int64()),
            "account_id": pa.array([a["account_id"] for a in accounts], pa.string()),
            "ring_id": pa.array([a["ring_id"] for a in accounts], pa.string()),
            "score": pa.array([a["score"] for a in accounts], pa.float64()),
            "flagged": pa.array([a["flagged"] for a in accounts], pa.bool_()),
            "baseline_score": pa.array(
                [a["baseline"]["prada_score"] for a in accounts], pa.float64()
            ),
            "baseline_flagged": pa.array(
                [a["baseline"]["prada_flagged"] for a in accounts], pa.bool_()
            ),
            "reasons": pa.array([a["reasons"] for a in accounts], pa.list_(pa.string())),
            "evidence": pa.array(
                [json.dumps(a["evidence"], default=str) for a in accounts], pa.string()
            ),
        }
    )
    register(wh, "new_rings", ring_table)
    register(wh, "new_flags", flag_table)
    wh.execute(
        "INSERT INTO rings SELECT run_id, ring_id, size, score, flagged, evidence::JSON "
        "FROM new_rings"
    )
    wh.execute(
        "INSERT INTO flags SELECT run_id, account_id, ring_id, score, flagged, baseline_score, "
        "baseline_flagged, reasons, evidence::JSON FROM new_flags"
    )
    wh.execute("DROP TABLE new_rings")
    wh.execute("DROP TABLE new_flags")
