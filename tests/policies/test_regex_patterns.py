"""Detection patterns run in DuckDB (RE2), so they are validated by DuckDB when a policy loads."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

from policies.detection import load_detection_policy
from policies.exceptions import PolicyFileError
from policies.loader import shipped_policy_path

SHIPPED = "{pattern: 'step[- ]by[- ]step', weight: 0.6}"


def _policy_with(tmp_path: Path, pattern: str) -> Path:
    text = shipped_policy_path("detection.yaml").read_text(encoding="utf-8")
    assert SHIPPED in text
    path = tmp_path / "detection.yaml"
    path.write_text(text.replace(SHIPPED, f"{{pattern: '{pattern}', weight: 0.6}}"), "utf-8")
    return path


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("step(?= by)", "invalid perl operator: (?="),
        ("(step) \\1", "invalid escape sequence: \\1"),
        ("(?<!no )steps", "invalid perl operator: (?<"),
    ],
)
def test_a_pattern_python_accepts_but_re2_refuses_is_refused_at_load(
    tmp_path: Path, pattern: str, why: str
) -> None:
    path = _policy_with(tmp_path, pattern)
    with pytest.raises(PolicyFileError) as caught:
        load_detection_policy(path)
    message = str(caught.value)
    where = f"{re.escape(str(path))}:\\d+: field 'features.reasoning_patterns.0.pattern': "
    assert re.match(where, message), message
    assert f"not a valid regular expression for DuckDB (RE2): {why}" in message


def test_a_pattern_that_loads_runs_in_duckdb(tmp_path: Path) -> None:
    """RE2 syntax Python's re refuses (``\\z``) is accepted, and matches as DuckDB matches."""
    policy = load_detection_policy(_policy_with(tmp_path, "step by step\\z")).model
    pattern = policy.features.reasoning_patterns[0].pattern
    texts = "(VALUES ('go step by step'), ('step by step, go')) AS v(t)"
    with duckdb.connect() as con:
        matches = con.execute(f"SELECT regexp_matches(t, $p) FROM {texts}", {"p": pattern})
        assert [m[0] for m in matches.fetchall()] == [True, False]
