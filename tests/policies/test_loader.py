"""The policy loader: validated models, content hashes and errors that name file, line and field."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from policies.exceptions import PolicyFileError
from policies.loader import PolicyModel, load_policy, shipped_policy_path


class Weights(PolicyModel):
    burst: float
    templates: float = 1.0


class Example(PolicyModel):
    name: str
    enabled: bool
    weights: Weights
    bands: list[int]


GOOD = "name: no\nenabled: true\nweights:\n  burst: 0.5\nbands: [1, 2]\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_file_loads_with_hash_of_its_bytes(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    loaded = load_policy(path, Example)
    assert loaded.model.weights.burst == 0.5
    assert loaded.model.name == "no"  # YAML 1.2 core: "no" is a string, not False
    assert loaded.path == path
    assert loaded.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: a\nenabled: true\nweights:\n  burst: 1\n  foo: 2\nbands: []\n",
            ":5: field 'weights.foo': extra inputs are not permitted",
        ),
        (
            "name: a\nenabled: true\nweights:\n  burst: fast\nbands: []\n",
            ":4: field 'weights.burst': input should be a valid number",
        ),
        (
            "name: a\nenabled: true\nweights:\n  burst: 1\nbands: [1, x]\n",
            ":5: field 'bands.1': input should be a valid integer",
        ),
        (
            "name: a\nenabled: true\nweights:\n  templates: 1\nbands: []\n",
            ":3: field 'weights.burst': field required",
        ),
        ("name: a\nname: b\n", ":2: field 'name': duplicate key"),
        ("name: a\nenabled: true\nweights: [\n", ":4: invalid YAML"),
        ("- just\n- a list\n", ":1: field '(top level)': input should be a valid dictionary"),
        ("", ":1: the file is empty"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PolicyFileError) as info:
        load_policy(path, Example)
    assert str(info.value).startswith(str(path) + expected)


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match=r"absent\.yaml: cannot read the file: No such file"):
        load_policy(tmp_path / "absent.yaml", Example)


def test_shipped_policy_path_finds_package_files_only() -> None:
    assert shipped_policy_path("org.yaml").name == "org.yaml"
    with pytest.raises(PolicyFileError, match="no shipped policy file"):
        shipped_policy_path("../pyproject.toml")
    with pytest.raises(PolicyFileError, match="no shipped policy file"):
        shipped_policy_path("nope.yaml")
