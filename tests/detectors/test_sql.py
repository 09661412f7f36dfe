"""The SQL builders are pure functions: their text and their allow-lists, checked as strings."""

from __future__ import annotations

import pytest

from detectors import sql
from detectors.engine import bind
from policies.detection import ReasoningPattern


def test_bind_takes_exactly_the_named_parameters() -> None:
    text = "SELECT * FROM t WHERE a = $a AND b < $b_2"
    assert bind(text, {"a": 1, "b_2": 2, "unused": 3}) == {"a": 1, "b_2": 2}
    with pytest.raises(KeyError, match="b_2"):
        bind(text, {"a": 1})


def test_reasoning_score_binds_every_pattern_as_a_parameter() -> None:
    patterns = [
        ReasoningPattern(pattern="step by step", weight=0.5),
        ReasoningPattern(pattern='it\'s "quoted"', weight=0.2),
    ]
    expr = sql.reasoning_score_expr(patterns)
    assert "$rp0" in expr and "$rl1" in expr
    assert "step by step" not in expr and "quoted" not in expr  # values never inlined
    params = sql.reasoning_params(patterns)
    assert params["rp1"] == 'it\'s "quoted"'
    assert params["rl0"] == pytest.approx(-0.6931, abs=1e-4)  # ln(1 - 0.5)


def test_scope_is_bounded_only_when_asked() -> None:
    assert "$until" in sql.scope_sql(bounded=True)
    assert "$until" not in sql.scope_sql(bounded=False)
    assert "$since" in sql.new_prompts_sql(since=True, bounded=False)
    assert "WHERE" not in sql.new_prompts_sql(since=False, bounded=False).split("GROUP BY")[0]


def test_cluster_kinds_and_edge_kinds_come_from_allow_lists() -> None:
    assert "template_id" in sql.cluster_stats_sql("template")
    assert "cluster_id" in sql.cluster_stats_sql("embedding")
    with pytest.raises(ValueError, match="not one of"):
        sql.cluster_stats_sql("account_id; DROP TABLE calls")
    case = sql.edge_weight_case()
    for kind in sql.EDGE_KINDS:
        assert f"WHEN '{kind}' THEN $w_{kind}" in case
    with pytest.raises(ValueError, match="edge kind"):
        sql.edge_weight_case(["payment", "x' OR '1'='1"])


def test_graph_edges_use_a_bounded_circulant_not_all_pairs() -> None:
    text = sql.graph_edges_sql()
    assert "range(1, $neighbours + 1)" in text
    assert "b.r = (a.r + d.step) % a.n" in text
    assert "$max_group" in text and "$n_accounts" in text


def test_ring_signals_check_own_templates_and_clusters_alike() -> None:
    text = sql.ring_signals_sql()
    for name, key in (("own_tpl", "template_id"), ("own_cl", "cluster_id")):
        assert f"{name} AS (" in text and f"GROUP BY c.ring_id, c.{key}, t.tot" in text
    assert text.count("t.in_rings >= $own_share * t.tot") == 2
    assert "$popular_share * s.size" in text
