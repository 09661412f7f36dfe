"""Per-call content features in a real warehouse: reasoning, language, templates, questions."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from detectors import sql
from detectors.engine import run
from detectors.features import derive_templates, featurize_new_prompts
from ingest.warehouse import Warehouse
from policies.detection import load_detection_policy
from tests.detectors.helpers import T0, add_account, add_call

POLICY = load_detection_policy().model
THINGS = [
    "apples",
    "pears",
    "plums",
    "kiwis",
    "limes",
    "melons",
    "grapes",
    "dates",
    "figs",
    "cherries",
    "lemons",
    "mangos",
    "peaches",
    "berries",
    "olives",
    "onions",
    "carrots",
    "beans",
    "peas",
    "leeks",
    "radishes",
    "turnips",
    "beets",
    "potatoes",
    "tomatoes",
    "peppers",
    "squashes",
    "pumpkins",
    "marrows",
    "lentils",
    "acorns",
    "walnuts",
    "pecans",
    "almonds",
    "hazelnuts",
    "cashews",
    "chestnuts",
    "coconuts",
    "papayas",
    "guavas",
]
PROBLEMS = [
    f"A farmer picks {n} {thing} on day {n} and sells {n + 3} of the {thing} she picked"
    for n, thing in enumerate(THINGS)
]


def _prepare(wh: Warehouse) -> None:
    run(wh, sql.scope_sql(False))
    featurize_new_prompts(wh, POLICY)
    derive_templates(wh, POLICY)


def _templates(wh: Warehouse) -> dict[str, tuple[str | None, str | None]]:
    rows = wh.fetchall(
        "SELECT any_value(c.account_id) || ':' || any_value(c.call_id), t.template_id, "
        "t.question_hash FROM calls AS c "
        "JOIN prompt_templates AS t ON t.prompt_hash = md5(c.prompt) "
        "GROUP BY t.prompt_hash, t.template_id, t.question_hash"
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def test_reasoning_score_and_language(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        add_call(wh, "c1", "a", "Solve this step by step and show your work: what is 12 * 7?")
        add_call(wh, "c2", "a", "Write a haiku about autumn leaves falling on the river.")
        add_call(wh, "c3", "a", "¿Cuál es la capital de Francia y por qué es famosa?")
        add_call(wh, "c4", "a", "请一步一步地解释这个问题")
        _prepare(wh)
        rows = dict(
            wh.fetchall(
                "SELECT c.call_id, f.reasoning_score FROM calls AS c "
                "JOIN prompt_features AS f ON f.prompt_hash = md5(c.prompt)"
            )
        )
        langs = dict(
            wh.fetchall(
                "SELECT c.call_id, f.lang FROM calls AS c "
                "JOIN prompt_features AS f ON f.prompt_hash = md5(c.prompt)"
            )
        )
    # "step by step" (0.6) and "show your work" (0.5): 1 - 0.4 * 0.5
    assert rows["c1"] == pytest.approx(0.8)
    assert rows["c2"] == 0.0
    assert rows["c1"] >= POLICY.features.reasoning_threshold > rows["c2"]
    assert langs == {"c1": "en", "c2": "en", "c3": "es", "c4": "zh"}


def test_a_reused_wrapper_is_a_template_and_the_problem_its_question(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        # Four accounts each send ten different problems in the same wrapper.
        for i, problem in enumerate(PROBLEMS):
            add_call(
                wh,
                f"r{i}",
                f"ring{i % 4}",
                f"Reason carefully and show every step.\n{problem}\nGive the final answer.",
                ts=T0 + timedelta(minutes=i),
            )
        # Twelve students each ask the same two homework problems once, in their own words.
        for s in range(12):
            for k in range(2):
                greeting = f"hi, {THINGS[s]} fan here"
                add_call(wh, f"s{s}-{k}", f"student{s}", f"{greeting}. {PROBLEMS[k]}")
        _prepare(wh)
        found = _templates(wh)
        labels = wh.fetchall("SELECT label FROM template_labels")
    ring = {k: v for k, v in found.items() if k.startswith("ring")}
    assert len({t for t, _ in ring.values()}) == 1  # one template for all forty prompts
    assert None not in {t for t, _ in ring.values()}
    assert len({q for _, q in ring.values()}) == 40  # forty different questions
    assert any("reason carefully and show every step" in label for (label,) in labels)
    # The homework problem, asked once by each student, never becomes template text.
    students = {k: v for k, v in found.items() if k.startswith("student")}
    assert {t for t, _ in students.values()} == {None}


def test_incremental_featurising_only_touches_new_prompts(tmp_path: Path) -> None:
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        add_account(wh, "a")
        add_call(wh, "c1", "a", "first prompt here", ts=T0)
        run(wh, sql.scope_sql(False))
        assert featurize_new_prompts(wh, POLICY) == 1
        add_call(wh, "c2", "a", "first prompt here", ts=T0 + timedelta(days=1))
        add_call(wh, "c3", "a", "a second, new prompt", ts=T0 + timedelta(days=1))
        assert featurize_new_prompts(wh, POLICY, since=T0 + timedelta(hours=1)) == 1
        assert wh.scalar("SELECT count(*) FROM prompt_features") == 2
