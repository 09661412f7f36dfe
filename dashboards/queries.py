"""Every read the console makes of the warehouse's call log and the detectors' tables.

One module, so a change to the detectors' schema touches one place. Each function runs one query
(values bound as ``$name``) through the warehouse adapter and returns plain dicts; SQL that varies
is built by small functions from allow-listed identifiers.
"""

# ruff: noqa: S608  -- graph_attributes_sql joins branches from the _ATTRIBUTE_SOURCES allow-list;
# every value is bound as a $parameter.

from __future__ import annotations

import json
from typing import Any

from detectors import results
from detectors.exceptions import DetectorError
from ingest.warehouse import Warehouse

# The shared things a ring's graph shows, and the SQL that lists (kind, value, account) for each.
# Every branch reads the members from the temp relation ``m`` defined by ``graph_attributes_sql``.
_ATTRIBUTE_SOURCES: dict[str, str] = {
    "payment": "SELECT 'payment', payment_fingerprint, account_id FROM accounts "
    "WHERE account_id IN (SELECT account_id FROM m) AND payment_fingerprint IS NOT NULL",
    "signup_ip": "SELECT 'signup_ip', signup_ip, account_id FROM accounts "
    "WHERE account_id IN (SELECT account_id FROM m) AND signup_ip IS NOT NULL",
    "client_ip": "SELECT DISTINCT 'client_ip', client_ip, account_id FROM calls "
    "WHERE account_id IN (SELECT account_id FROM m) AND client_ip IS NOT NULL",
    "user_agent": "SELECT DISTINCT 'user_agent', user_agent, account_id FROM calls "
    "WHERE account_id IN (SELECT account_id FROM m) AND user_agent IS NOT NULL",
    "template": "SELECT DISTINCT 'template', t.template_id, c.account_id FROM calls AS c "
    "JOIN prompt_templates AS t ON t.prompt_hash = md5(c.prompt) "
    "WHERE c.account_id IN (SELECT account_id FROM m) AND t.template_id IS NOT NULL",
    "cluster": "SELECT DISTINCT 'cluster', p.cluster_id, c.account_id FROM calls AS c "
    "JOIN prompt_clusters AS p ON p.prompt_hash = md5(c.prompt) "
    "WHERE c.account_id IN (SELECT account_id FROM m)",
}
ATTRIBUTE_KINDS: tuple[str, ...] = tuple(_ATTRIBUTE_SOURCES)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _decoded(wh: Warehouse, sql: str, params: dict[str, Any], column: str) -> list[dict[str, Any]]:
    """``wh.records`` with one JSON column decoded."""
    rows = wh.records(sql, params)
    for row in rows:
        row[column] = _json(row[column])
    return rows


def _first(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    return rows[0] if rows else None


# -- runs and aggregates ------------------------------------------------------------------------
def latest_run_id(wh: Warehouse) -> int | None:
    value = wh.scalar("SELECT max(run_id) FROM detection_runs")
    return None if value is None else int(value)


def runs(wh: Warehouse) -> list[dict[str, Any]]:
    return wh.records(
        "SELECT run_id, started_at, finished_at, mode, n_calls, n_accounts, n_rings, n_flagged "
        "FROM detection_runs ORDER BY run_id"
    )


def traffic_by_day(wh: Warehouse) -> list[dict[str, Any]]:
    return wh.records(
        "SELECT date_trunc('day', ts)::DATE AS day, count(*) AS calls, "
        "count(DISTINCT account_id) AS accounts FROM calls GROUP BY 1 ORDER BY 1"
    )


def totals(wh: Warehouse) -> dict[str, Any]:
    row = wh.fetchone(
        "SELECT (SELECT count(*) FROM calls), (SELECT count(DISTINCT account_id) FROM calls), "
        "(SELECT count(*) FROM accounts)"
    )
    assert row is not None
    return {"calls": row[0], "active_accounts": row[1], "accounts": row[2]}


# -- rings and flagged accounts ------------------------------------------------------------------
def rings(wh: Warehouse, run_id: int) -> list[dict[str, Any]]:
    """The run's candidate rings with evidence and when each was first flagged."""
    return _decoded(
        wh,
        "SELECT r.ring_id, r.size, r.score, r.flagged, r.evidence, "
        "(SELECT min(d.finished_at) FROM rings AS p JOIN detection_runs AS d USING (run_id) "
        " WHERE p.ring_id = r.ring_id AND p.flagged) AS first_flagged "
        "FROM rings AS r WHERE r.run_id = $r ORDER BY r.score DESC, r.ring_id",
        {"r": run_id},
        "evidence",
    )


def flagged_accounts(wh: Warehouse, run_id: int) -> list[dict[str, Any]]:
    """The run's flagged accounts with their ring and when each was first flagged."""
    return _decoded(
        wh,
        "SELECT f.account_id, f.ring_id, f.score, f.flagged, f.baseline_flagged, f.reasons, "
        "f.evidence, r.size AS ring_size, "
        "(SELECT min(d.finished_at) FROM flags AS p JOIN detection_runs AS d USING (run_id) "
        " WHERE p.account_id = f.account_id AND p.flagged) AS first_flagged "
        "FROM flags AS f LEFT JOIN rings AS r ON r.run_id = f.run_id AND r.ring_id = f.ring_id "
        "WHERE f.run_id = $r AND f.flagged ORDER BY f.score DESC, f.account_id",
        {"r": run_id},
        "evidence",
    )


def ring(wh: Warehouse, run_id: int, ring_id: str) -> dict[str, Any] | None:
    sql = (
        "SELECT ring_id, size, score, flagged, evidence FROM rings "
        "WHERE run_id = $r AND ring_id = $g"
    )
    return _first(_decoded(wh, sql, {"r": run_id, "g": ring_id}, "evidence"))


def ring_members(wh: Warehouse, run_id: int, ring_id: str) -> list[dict[str, Any]]:
    return wh.records(
        "SELECT f.account_id, f.score, f.flagged, f.baseline_flagged, a.created_at, a.country, "
        "a.plan, a.email_domain, coalesce(x.n_calls, 0) AS n_calls, x.reasoning_rate "
        "FROM flags AS f LEFT JOIN accounts AS a USING (account_id) "
        "LEFT JOIN account_features AS x USING (account_id) "
        "WHERE f.run_id = $r AND f.ring_id = $g ORDER BY f.score DESC, f.account_id",
        {"r": run_id, "g": ring_id},
    )


def graph_attributes_sql(kinds: tuple[str, ...]) -> str:
    """(kind, value, account_id, n_members) for each attribute shared by two or more members."""
    unknown = [k for k in kinds if k not in _ATTRIBUTE_SOURCES]
    if unknown:
        raise ValueError(f"unknown attribute kinds {unknown}")
    branches = "\nUNION ALL\n".join(_ATTRIBUTE_SOURCES[k] for k in kinds)
    return (
        "WITH m AS (SELECT account_id FROM flags WHERE run_id = $r AND ring_id = $g), "
        f"attrs(kind, val, account_id) AS ({branches}), "
        "shared AS (SELECT kind, val, count(DISTINCT account_id) AS n FROM attrs "
        "GROUP BY ALL HAVING count(DISTINCT account_id) >= 2), "
        "ranked AS (SELECT *, row_number() OVER (PARTITION BY kind ORDER BY n DESC, val) AS rk "
        "FROM shared) "
        "SELECT DISTINCT a.kind, a.val, a.account_id, r.n FROM attrs AS a "
        "JOIN ranked AS r USING (kind, val) WHERE r.rk <= $max ORDER BY a.kind, a.val, a.account_id"
    )


def graph_attributes(
    wh: Warehouse, run_id: int, ring_id: str, max_per_kind: int
) -> list[dict[str, Any]]:
    return wh.records(
        graph_attributes_sql(ATTRIBUTE_KINDS), {"r": run_id, "g": ring_id, "max": max_per_kind}
    )


def member_edges(wh: Warehouse, run_id: int, ring_id: str) -> list[dict[str, Any]]:
    """Graph edges between two members of the ring, with each signal's contribution."""
    return _decoded(
        wh,
        "WITH m AS (SELECT account_id FROM flags WHERE run_id = $r AND ring_id = $g) "
        "SELECT src, dst, weight, contributions FROM graph_edges "
        "WHERE src IN (SELECT account_id FROM m) AND dst IN (SELECT account_id FROM m) "
        "ORDER BY weight DESC",
        {"r": run_id, "g": ring_id},
        "contributions",
    )


def ring_timeline(wh: Warehouse, run_id: int, ring_id: str) -> list[dict[str, Any]]:
    return wh.records(
        "SELECT date_trunc('hour', ts) AS hour, count(*) AS calls, "
        "count(DISTINCT account_id) AS accounts FROM calls WHERE account_id IN "
        "(SELECT account_id FROM flags WHERE run_id = $r AND ring_id = $g) GROUP BY 1 ORDER BY 1",
        {"r": run_id, "g": ring_id},
    )


def template_examples(
    wh: Warehouse, template_ids: list[str], accounts: list[str] | None, per_template: int = 2
) -> dict[str, list[str]]:
    """A few example prompts per template (from ``accounts`` when given)."""
    if not template_ids:
        return {}
    rows = wh.fetchall(
        "SELECT t.template_id, c.prompt FROM calls AS c "
        "JOIN prompt_templates AS t ON t.prompt_hash = md5(c.prompt) "
        "WHERE list_contains($ids, t.template_id) "
        "AND ($accounts IS NULL OR list_contains($accounts, c.account_id)) "
        "QUALIFY row_number() OVER (PARTITION BY t.template_id ORDER BY c.ts, c.call_id) <= $n",
        {"ids": template_ids, "accounts": accounts, "n": per_template},
    )
    out: dict[str, list[str]] = {}
    for template_id, prompt in rows:
        out.setdefault(template_id, []).append(prompt)
    return out


def cluster_examples(
    wh: Warehouse, cluster_ids: list[str], per_cluster: int = 3
) -> dict[str, list[str]]:
    """A few example prompt hashes per embedding or template cluster (see :func:`prompt_texts`)."""
    if not cluster_ids:
        return {}
    rows = wh.fetchall(
        "WITH hits AS (SELECT prompt_hash, cluster_id FROM prompt_clusters "
        "WHERE list_contains($ids, cluster_id) UNION ALL SELECT prompt_hash, template_id "
        "FROM prompt_templates WHERE list_contains($ids, template_id)) "
        "SELECT cluster_id, prompt_hash FROM hits QUALIFY row_number() OVER "
        "(PARTITION BY cluster_id ORDER BY prompt_hash) <= $n ORDER BY cluster_id, prompt_hash",
        {"ids": cluster_ids, "n": per_cluster},
    )
    out: dict[str, list[str]] = {}
    for cluster_id, prompt_hash in rows:
        out.setdefault(cluster_id, []).append(prompt_hash)
    return out


def prompt_texts(wh: Warehouse, hashes: list[str]) -> dict[str, str]:
    """One call's prompt text for each hash some call has: hashes every call's prompt once."""
    if not hashes:
        return {}
    rows = wh.fetchall(
        "SELECT h, any_value(prompt) FROM (SELECT md5(prompt) AS h, prompt FROM calls) "
        "WHERE list_contains($hashes, h) GROUP BY h",
        {"hashes": hashes},
    )
    return {h: text for h, text in rows}


def ring_clusters(wh: Warehouse, run_id: int, ring_id: str, limit: int) -> list[dict[str, Any]]:
    """The embedding clusters the ring's calls fall in most."""
    return wh.records(
        "SELECT p.cluster_id, count(*) AS n_calls, count(DISTINCT c.account_id) AS n_accounts, "
        "any_value(k.reasoning_rate) AS reasoning_rate FROM calls AS c "
        "JOIN prompt_clusters AS p ON p.prompt_hash = md5(c.prompt) "
        "LEFT JOIN clusters AS k ON k.cluster_id = p.cluster_id "
        "WHERE c.account_id IN (SELECT account_id FROM flags WHERE run_id = $r AND ring_id = $g) "
        "GROUP BY 1 ORDER BY n_calls DESC, p.cluster_id LIMIT $lim",
        {"r": run_id, "g": ring_id, "lim": limit},
    )


# -- accounts ------------------------------------------------------------------------------------
def account_flag(wh: Warehouse, run_id: int, account_id: str) -> dict[str, Any] | None:
    """The account's verdict and evidence in the run (the detectors' own reader), or None."""
    try:
        return results.account_evidence(wh, account_id, run_id)
    except DetectorError:  # not in that run (or no such run)
        return None


def account_profile(wh: Warehouse, account_id: str) -> dict[str, Any] | None:
    return _first(
        wh.records(
            "SELECT account_id, created_at, email_domain, payment_fingerprint, signup_ip, "
            "country, plan, org_id FROM accounts WHERE account_id = $a",
            {"a": account_id},
        )
    )


def account_features(wh: Warehouse, account_id: str) -> dict[str, Any] | None:
    return _first(
        wh.records("SELECT * FROM account_features WHERE account_id = $a", {"a": account_id})
    )


def recent_calls(wh: Warehouse, account_id: str, limit: int) -> list[dict[str, Any]]:
    return wh.records(
        "SELECT call_id, ts, endpoint, model, client_ip, user_agent, status_code, prompt_tokens, "
        "completion_tokens, prompt FROM calls WHERE account_id = $a "
        "ORDER BY ts DESC, call_id LIMIT $lim",
        {"a": account_id, "lim": limit},
    )


def linked_accounts(wh: Warehouse, account_id: str, limit: int) -> list[dict[str, Any]]:
    """The account's strongest graph links with what they share."""
    return _decoded(
        wh,
        "SELECT CASE WHEN src = $a THEN dst ELSE src END AS account_id, weight, contributions "
        "FROM graph_edges WHERE src = $a OR dst = $a ORDER BY weight DESC, account_id LIMIT $lim",
        {"a": account_id, "lim": limit},
        "contributions",
    )


# -- clusters ------------------------------------------------------------------------------------
def clusters(wh: Warehouse, kind: str | None, limit: int) -> list[dict[str, Any]]:
    return wh.records(
        "SELECT cluster_id, kind, label, n_calls, n_accounts, n_prompts, coverage, "
        "reasoning_rate, concentration, suspicion FROM clusters "
        "WHERE $kind IS NULL OR kind = $kind ORDER BY suspicion DESC, n_calls DESC, cluster_id "
        "LIMIT $lim",
        {"kind": kind, "lim": limit},
    )


def clusters_by_id(wh: Warehouse, cluster_ids: list[str]) -> list[dict[str, Any]]:
    if not cluster_ids:
        return []
    return wh.records(
        "SELECT cluster_id, kind, label FROM clusters WHERE list_contains($ids, cluster_id)",
        {"ids": cluster_ids},
    )


def embedding_sample(wh: Warehouse, limit: int) -> list[dict[str, Any]]:
    """A deterministic sample of prompts (hash, vector) embedded by the newest embedding model,
    with their cluster (vectors of two models do not share a space, or even a length)."""
    return wh.records(
        "SELECT e.prompt_hash, e.vector, p.cluster_id "
        "FROM embeddings AS e JOIN prompt_clusters AS p "
        "ON p.prompt_hash = e.prompt_hash AND p.model = e.model "
        "WHERE e.model = (SELECT model FROM embeddings ORDER BY created_at DESC, model LIMIT 1) "
        "ORDER BY md5(e.prompt_hash) LIMIT $lim",
        {"lim": limit},
    )
