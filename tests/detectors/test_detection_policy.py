"""The shipped detection policy loads, and a bad one is refused with the field named."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.detection import DetectionPolicy, load_detection_policy
from policies.exceptions import PolicyFileError
from policies.loader import shipped_policy_path


def test_shipped_policy_loads_with_a_hash() -> None:
    loaded = load_detection_policy()
    assert isinstance(loaded.model, DetectionPolicy)
    assert len(loaded.sha256) == 64
    assert loaded.model.rings.threshold > 0
    assert all(p.log_miss < 0 for p in loaded.model.features.reasoning_patterns)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        (
            "{pattern: 'step[- ]by[- ]step', weight: 0.6}",
            "{pattern: '(unclosed', weight: 0.6}",
            "features.reasoning_patterns.0.pattern",
            "not a valid regular expression",
        ),
        (
            "  min_calls: 10\n  max_calls: 200",
            "  min_calls: 10\n  max_calls: 5",
            "prada",
            "max_calls (5) is below min_calls (10)",
        ),
        ("    operational: 0.20\n", "", "rings.weights.operational", "field required"),
    ],
)
def test_invalid_values_are_refused(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    text = shipped_policy_path("detection.yaml").read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "detection.yaml"
    bad.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(PolicyFileError) as caught:
        load_detection_policy(bad)
    assert f"field '{field}'" in str(caught.value) and message in str(caught.value)
    assert str(bad) in str(caught.value)
