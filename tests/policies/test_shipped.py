"""Every shipped policy file loads, and every registry entry quotes its clauses and sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.catalog import KINDS, shipped_files, validate
from policies.enforcement import EnforcementPolicy, load_enforcement
from policies.exceptions import PolicyFileError
from policies.licenses import LicenceEntry, Registry, shipped_registry
from policies.loader import LoadedPolicy, load_policy

REQUIRED = {
    "Apache-2.0",
    "MIT",
    "BSD-3-Clause",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-4.0",
    "LicenseRef-llama-2-community",
    "LicenseRef-llama-3-community",
    "LicenseRef-llama-3.1-community",
    "LicenseRef-llama-3.2-community",
    "LicenseRef-llama-3.3-community",
    "LicenseRef-llama-4-community",
    "LicenseRef-gemma-terms-of-use",
    "LicenseRef-tongyi-qianwen",
    "LicenseRef-tongyi-qianwen-research",
    "LicenseRef-qwen-research",
    "LicenseRef-deepseek-license-1.0",
    "LicenseRef-mistral-research-0.1",
    "LicenseRef-scancode-falcon-2-11b-1.0",
    "LicenseRef-scancode-bigscience-rail-1.0",
    "LicenseRef-scancode-bigscience-open-rail-m",
    "LicenseRef-openai-terms-of-use",
    "LicenseRef-anthropic-terms",
    "LicenseRef-google-gemini-api-terms",
}


@pytest.mark.parametrize(("kind", "path"), shipped_files(), ids=lambda v: str(v).rsplit("/")[-1])
def test_every_shipped_policy_file_loads(kind: str, path: Path) -> None:
    loaded = validate(path, kind)
    assert isinstance(loaded.model, KINDS[kind])
    assert len(loaded.sha256) == 64


def test_registry_covers_the_issue_list() -> None:
    assert {loaded.model.id for loaded in shipped_registry()} >= REQUIRED


@pytest.mark.parametrize("loaded", list(shipped_registry()), ids=lambda e: e.model.id)
def test_every_entry_quotes_clauses_with_a_source(loaded: LoadedPolicy[LicenceEntry]) -> None:
    entry = loaded.model
    assert entry.sources and all(s.url.startswith("https://") for s in entry.sources)
    assert entry.clauses and all(len(c.text) >= 10 for c in entry.clauses)
    for topic in ("train_other_models", "commercial", "student_is_derivative"):
        rule = getattr(entry, topic)
        assert rule.value == "silent" or rule.clauses, topic
    assert entry.kind == "api_terms" or entry.fingerprints or entry.hf_ids


def test_registry_rejects_an_entry_citing_an_unquoted_clause(tmp_path: Path) -> None:
    source = next(p for k, p in shipped_files() if p.name == "mit.yaml")
    broken = tmp_path / "licenses" / "mit.yaml"
    broken.parent.mkdir()
    broken.write_text(source.read_text().replace("clauses: [grant]", "clauses: [nowhere]", 1))
    with pytest.raises(PolicyFileError, match=r"mit\.yaml:\d+: field '\(top level\)'.*nowhere"):
        validate(broken)


def test_enforcement_bands_map_scores_to_actions() -> None:
    policy = load_enforcement().model
    assert [policy.band_for(s).action for s in (0.0, 0.59, 0.6, 0.85, 0.95, 1.0)] == [
        "none",
        "none",
        "throttle",
        "restrict",
        "suspend",
        "suspend",
    ]
    assert policy.band_for(0.9).requires_review
    with pytest.raises(ValueError, match="outside"):
        policy.band_for(1.5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "bands:\n  - min_score: 0.0\n    action: none\n  - min_score: 0.5\n    action: ban\n",
            ":5: field 'bands.1.action': input should be 'none', 'throttle', 'restrict' or "
            "'suspend'",
        ),
        (
            "bands:\n  - min_score: 0.0\n    action: suspend\n"
            "  - min_score: 0.5\n    action: none\n",
            "actions must not de-escalate",
        ),
        ("bands:\n  - min_score: 0.2\n    action: none\n", "first band must start at min_score 0"),
        (
            "bands:\n  - min_score: 0.0\n    action: none\n    colour: red\n",
            ":4: field 'bands.0.colour': extra inputs are not permitted",
        ),
    ],
)
def test_malformed_enforcement_rules_are_refused(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "enforcement.yaml"
    path.write_text(text)
    with pytest.raises(PolicyFileError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        load_policy(path, EnforcementPolicy)


def test_two_entries_claiming_one_hub_id_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "licenses"
    folder.mkdir()
    source = next(p for k, p in shipped_files() if p.name == "mit.yaml")
    (folder / "a.yaml").write_text(source.read_text())
    clone = source.read_text().replace("id: MIT\n", "id: LicenseRef-mit-copy\n", 1)
    (folder / "b.yaml").write_text(clone.replace('aliases: ["MIT License"]', "aliases: []"))
    with pytest.raises(PolicyFileError, match=r"b\.yaml: 'mit' already names MIT in .*a\.yaml"):
        Registry.load(folder)


def test_unknown_policy_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.yaml"
    path.write_text("a: 1\n")
    with pytest.raises(PolicyFileError, match="cannot tell which kind of policy"):
        validate(path)
    with pytest.raises(PolicyFileError, match="unknown policy kind 'nope'"):
        validate(path, "nope")


def test_every_policy_kind_ships_a_file() -> None:
    assert {kind for kind, _ in shipped_files()} == set(KINDS)


@pytest.mark.parametrize(
    "loaded", [e for e in shipped_registry() if e.model.fingerprints], ids=lambda e: e.model.id
)
def test_fingerprints_identify_exactly_their_own_entry(loaded: LoadedPolicy[LicenceEntry]) -> None:
    entry = loaded.model
    text = "\n\n".join(entry.fingerprints + [c.text for c in entry.clauses])
    assert [e.id for e in shipped_registry().identify_text(text)] == [entry.id]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("org.yaml", "silence: refuse\nsilense: allow\n", ":2: field 'silense': extra inputs"),
        ("org.yaml", "monthly_active_users: lots\n", ":1: field 'monthly_active_users': input"),
        ("org.yaml", "allowed_uses: [research\n", ":2: invalid YAML"),
        (
            "org.yaml",
            "authorizations:\n  - licence: MIT\n",
            ":2: field 'authorizations.0.reference'",
        ),
        ("enforcement.yaml", "bands: 3\n", ":1: field 'bands': input should be a valid list"),
    ],
)
def test_malformed_shipped_kinds_name_file_line_and_field(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(PolicyFileError) as info:
        validate(path)
    assert str(info.value).startswith(str(path) + expected)


def test_malformed_licence_entry_names_the_clause_field(tmp_path: Path) -> None:
    source = next(p for k, p in shipped_files() if p.name == "gemma.yaml")
    path = tmp_path / "licenses" / "gemma.yaml"
    path.parent.mkdir()
    lines = source.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("train_other_models:"))
    lines.insert(at + 1, "  verdict: maybe")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(PolicyFileError) as info:
        validate(path)
    assert str(info.value) == (
        f"{path}:{at + 2}: field 'train_other_models.verdict': extra inputs are not permitted"
    )
