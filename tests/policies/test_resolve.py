"""Resolving a model's licence from real-format model cards and licence texts in tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.exceptions import LicenceMismatch
from policies.licenses import shipped_registry
from policies.org import OrgPolicy
from policies.resolve import Resolution, resolve_model
from tests.distill.cards import write_model

LLAMA31_TEXT = """ LLAMA 3.1 COMMUNITY LICENSE AGREEMENT

 Llama 3.1 Version Release Date: July 23, 2024

1. License Rights and Redistribution.
          iii. You must retain in all copies of the Llama Materials that you distribute the
following attribution notice within a “Notice” text file distributed as a part of such copies:
“Llama 3.1 is licensed under the Llama 3.1 Community License, Copyright © Meta Platforms, Inc.
All Rights Reserved.”
"""

MIT_TEXT = """MIT License

Copyright (c) 2023 DeepSeek

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED.
"""

TONGYI_RESEARCH_TEXT = """Tongyi Qianwen RESEARCH LICENSE AGREEMENT

Tongyi Qianwen Release Date: November 30, 2023
"""

ORG = OrgPolicy()


def _resolve(target: Path | str, declared: str | None = None, org: OrgPolicy = ORG) -> Resolution:
    return resolve_model(str(target), declared, shipped_registry(), org, "teacher")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (LLAMA31_TEXT, "LicenseRef-llama-3.1-community"),
        (MIT_TEXT, "MIT"),
        (TONGYI_RESEARCH_TEXT, "LicenseRef-tongyi-qianwen-research"),
    ],
)
def test_licence_file_is_identified_by_its_text(tmp_path: Path, text: str, expected: str) -> None:
    folder = write_model(tmp_path, "m", {}, licence_text=text)
    found = _resolve(folder)
    assert found.licences == [expected]
    assert not found.problems


def test_file_name_does_not_decide(tmp_path: Path) -> None:
    folder = write_model(tmp_path, "m", {})
    (folder / "LICENSE.txt").write_text("All rights reserved. Ask us first.\n")
    found = _resolve(folder)
    assert found.licences == []
    assert "licence is unknown" in found.problems[0]


def test_license_other_with_recognised_text_resolves(tmp_path: Path) -> None:
    folder = write_model(tmp_path, "m", {"license": "other"}, licence_text=LLAMA31_TEXT)
    assert _resolve(folder).licences == ["LicenseRef-llama-3.1-community"]


def test_license_link_resolves_license_other(tmp_path: Path) -> None:
    card = {"license": "other", "license_link": "https://ai.google.dev/gemma/terms"}
    folder = write_model(tmp_path, "m", card)
    assert _resolve(folder).licences == ["LicenseRef-gemma-terms-of-use"]


def test_card_and_text_that_disagree_are_ambiguous(tmp_path: Path) -> None:
    folder = write_model(tmp_path, "m", {"license": "apache-2.0"}, licence_text=LLAMA31_TEXT)
    problems = _resolve(folder).problems
    assert any("ambiguous" in p and "Apache-2.0" in p for p in problems)


def test_base_model_lineage_adds_the_base_licence(tmp_path: Path) -> None:
    card = {"license": "mit", "base_model": ["meta-llama/Llama-3.1-8B"]}
    folder = write_model(tmp_path, "m", card)
    assert _resolve(folder).licences == ["MIT", "LicenseRef-llama-3.1-community"]


def test_unknown_lineage_is_a_problem_until_the_org_names_it(tmp_path: Path) -> None:
    card = {"license": "apache-2.0", "base_model": "someone/base-7b"}
    folder = write_model(tmp_path, "m", card)
    assert "someone/base-7b has no known licence" in _resolve(folder).problems[0]
    org = OrgPolicy(known_models={"someone/base-7b": "MIT"})
    assert _resolve(folder, org=org).licences == ["Apache-2.0", "MIT"]


def test_declaration_that_disagrees_names_both(tmp_path: Path) -> None:
    folder = write_model(tmp_path, "m", {"license": "llama3"})
    with pytest.raises(
        LicenceMismatch,
        match=r"declares LicenseRef-llama-3\.1-community.*"
        r"LicenseRef-llama-3-community \(README\.md front matter license: llama3\)",
    ):
        _resolve(folder, "llama3.1")


def test_declaration_that_agrees_is_accepted(tmp_path: Path) -> None:
    folder = write_model(tmp_path, "m", {"license": "llama3.1"})
    assert _resolve(folder, "LicenseRef-llama-3.1-community").licences == [
        "LicenseRef-llama-3.1-community"
    ]


def test_declaration_without_evidence_is_not_trusted_by_default(tmp_path: Path) -> None:
    folder = write_model(tmp_path, "m", {})
    found = _resolve(folder, "mit")
    assert any("nothing in" in p for p in found.problems)
    trusted = _resolve(folder, "mit", org=OrgPolicy(trust_declaration_without_evidence=True))
    assert trusted.licences == ["MIT"] and not trusted.problems


def test_api_teacher_and_declared_endpoint() -> None:
    assert _resolve("api:openai/gpt-4o").licences == ["LicenseRef-openai-terms-of-use"]
    assert "provider one of" in _resolve("api:acme/x").problems[0]
    url = "https://llm.example.com/v1"
    assert "declare the terms" in _resolve(url).problems[0]
    assert _resolve(url, "api:anthropic").licences == ["LicenseRef-anthropic-terms"]
    with pytest.raises(LicenceMismatch):
        _resolve("api:openai/gpt-4o", "api:google")


def test_broken_front_matter_is_reported(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlicense: [mit\n---\n")
    assert "not valid YAML" in _resolve(folder).problems[0]


def test_windows_line_endings_and_bom_in_the_card(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "README.md").write_bytes(b"\xef\xbb\xbf---\r\nlicense: gemma\r\n---\r\n# m\r\n")
    assert _resolve(folder).licences == ["LicenseRef-gemma-terms-of-use"]


def test_code_and_model_licence_files_both_count(tmp_path: Path) -> None:
    card = {"license": "other", "license_name": "deepseek"}
    folder = write_model(tmp_path, "m", card)
    (folder / "LICENSE-CODE").write_text(MIT_TEXT)
    (folder / "LICENSE-MODEL").write_text(
        "DEEPSEEK LICENSE AGREEMENT\n\nVersion 1.0, 23 October 2023\n\n"
        '"Derivatives of the Model" means all modifications to the Model, ...\n'
    )
    found = _resolve(folder)
    assert found.licences == ["LicenseRef-deepseek-license-1.0", "MIT"]
    assert not found.problems


def test_teacher_must_be_a_model_directory(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{}")
    assert _resolve(config).problems == [f"{config}: not a model directory"]


def test_config_file_student_is_from_scratch_and_takes_no_declaration(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("{}")
    found = resolve_model(str(config), None, shipped_registry(), ORG, "student")
    assert found.from_scratch and not found.licences and not found.problems
    with pytest.raises(LicenceMismatch, match="config file"):
        resolve_model(str(config), "mit", shipped_registry(), ORG, "student")
