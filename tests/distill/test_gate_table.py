"""The licence gate over teacher / student / data / use combinations.

Each row asserts the decision, the clauses cited (licence, clause, outcome) and the obligations
owed (kind, text). Model cards are written in real Hugging Face front-matter format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.distill.cards import Run

L2, L3, L31 = (
    "LicenseRef-llama-2-community",
    "LicenseRef-llama-3-community",
    "LicenseRef-llama-3.1-community",
)
GEMMA, TQ = "LicenseRef-gemma-terms-of-use", "LicenseRef-tongyi-qianwen"
TQR, QR = "LicenseRef-tongyi-qianwen-research", "LicenseRef-qwen-research"
OPENAI, ANTHROPIC = "LicenseRef-openai-terms-of-use", "LicenseRef-anthropic-terms"
GEMINI, DEEPSEEK = "LicenseRef-google-gemini-api-terms", "LicenseRef-deepseek-license-1.0"
MRL, FALCON = "LicenseRef-mistral-research-0.1", "LicenseRef-scancode-falcon-2-11b-1.0"
OPENRAIL = "LicenseRef-scancode-bigscience-open-rail-m"


@dataclass
class Case:
    id: str
    teacher: str
    student: str
    use: str
    decision: str
    cites: set[tuple[str, str, str]] = field(default_factory=set)
    owes: set[tuple[str, str]] = field(default_factory=set)
    data: list[dict[str, str]] = field(default_factory=list)
    org: dict[str, Any] = field(default_factory=dict)
    student_name: str = "acme-student"
    owes_nothing_from: str | None = None


CASES = [
    Case(
        "llama3-into-qwen-denied",
        "llama3",
        "qwen-apache",
        "commercial",
        "deny",
        cites={(L3, "1.b.v", "refuses")},
    ),
    Case(
        "llama3-into-llama3-allowed",
        "llama3",
        "llama3",
        "commercial",
        "allow_with_obligations",
        cites={(L3, "1.b.v", "permits")},
        owes={("name_prefix", "Llama 3"), ("built_with", "Built with Meta Llama 3")},
    ),
    Case(
        "llama3.1-into-qwen",
        "llama3.1",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        cites={(L31, "1.a, 1.b.i", "permits"), (L31, "2", "obliges")},
        owes={
            ("name_prefix", "Llama"),
            ("built_with", "Built with Llama"),
            (
                "notice",
                "Llama 3.1 is licensed under the Llama 3.1 Community License, "
                "Copyright © Meta Platforms, Inc. All Rights Reserved.",
            ),
            ("user_cap", "confirm at most 700,000,000 monthly active users, or obtain a licence"),
            ("licence_copy", "the Llama 3.1 Community License Agreement"),
        },
    ),
    Case(
        "llama3.1-into-scratch-research",
        "llama3.1",
        "scratch",
        "research",
        "allow_with_obligations",
        cites={(L31, "1.a, 1.b.i", "permits")},
        owes={("name_prefix", "Llama"), ("built_with", "Built with Llama")},
    ),
    Case(
        "llama3.2-into-qwen",
        "llama3.2",
        "qwen-apache",
        "research",
        "allow_with_obligations",
        cites={("LicenseRef-llama-3.2-community", "1.a, 1.b.i", "permits")},
        owes={
            (
                "notice",
                "Llama 3.2 is licensed under the Llama 3.2 Community License, "
                "Copyright © Meta Platforms, Inc. All Rights Reserved.",
            )
        },
    ),
    Case(
        "llama3.3-into-qwen",
        "llama3.3",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        cites={("LicenseRef-llama-3.3-community", "1.a, 1.b.i", "permits")},
        owes={("name_prefix", "Llama")},
    ),
    Case(
        "llama4-license-other-into-qwen",
        "llama4",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        cites={("LicenseRef-llama-4-community", "1.a, 1.b.i", "permits")},
        owes={("built_with", "Built with Llama")},
    ),
    Case(
        "llama2-into-qwen-denied",
        "llama2",
        "qwen-apache",
        "research",
        "deny",
        cites={(L2, "1.b.v", "refuses")},
    ),
    Case(
        "llama2-into-llama2",
        "llama2",
        "llama2",
        "commercial",
        "allow_with_obligations",
        cites={(L2, "1.b.v", "permits")},
        owes={
            (
                "notice",
                "Llama 2 is licensed under the LLAMA 2 Community License, Copyright © "
                "Meta Platforms, Inc. All Rights Reserved.",
            )
        },
    ),
    Case(
        "gemma-student-is-model-derivative",
        "gemma",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        cites={(GEMMA, "1.1(e), 2.2", "permits"), (GEMMA, "1.1(e)", "obliges")},
        owes={
            (
                "pass_through_use_restrictions",
                "the Gemma use restrictions of Section 3.2 and the Prohibited Use Policy",
            ),
            (
                "notice",
                "Gemma is provided under and subject to the Gemma Terms of Use found "
                "at ai.google.dev/gemma/terms",
            ),
        },
    ),
    Case(
        "deepseek-r1-mit-allow",
        "deepseek-r1",
        "scratch",
        "commercial",
        "allow",
        cites={("MIT", "grant", "permits"), ("MIT", "condition", "notes")},
    ),
    Case(
        "deepseek-r1-mit-into-qwen-owes-only-qwen",
        "deepseek-r1",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        cites={("MIT", "grant", "permits")},
        owes_nothing_from="MIT",
    ),
    Case(
        "deepseek-v3-licence-derivative",
        "deepseek-v3",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        cites={(DEEPSEEK, "1 Derivatives of the Model", "obliges"), (DEEPSEEK, "4", "permits")},
        owes={
            (
                "pass_through_use_restrictions",
                "the use-based restrictions of paragraph 5 and Attachment A",
            )
        },
    ),
    Case(
        "openai-api-denied",
        "api:openai/gpt-4o",
        "qwen-apache",
        "commercial",
        "deny",
        cites={(OPENAI, "Terms of Use: What you cannot do, Business Terms (e)", "refuses")},
    ),
    Case(
        "anthropic-api-denied",
        "api:anthropic/claude-sonnet",
        "qwen-apache",
        "research",
        "deny",
        cites={
            (ANTHROPIC, "Usage Policy: Do Not Abuse our Platform, Commercial Terms D.4", "refuses")
        },
    ),
    Case(
        "gemini-api-denied",
        "api:google/gemini-2.5-pro",
        "scratch",
        "internal",
        "deny",
        cites={(GEMINI, "Use restrictions", "refuses")},
    ),
    Case(
        "openai-api-attested-non-competing",
        "api:openai/gpt-4o",
        "qwen-apache",
        "research",
        "allow_with_obligations",
        org={"attest_not_competing": [OPENAI]},
        cites={(OPENAI, "Terms of Use: What you cannot do, Business Terms (e)", "permits")},
        owes={
            (
                "attestation",
                "the student must not compete with the provider's services "
                "(OpenAI Terms of Use and Business Terms)",
            )
        },
    ),
    Case(
        "anthropic-api-authorised",
        "api:anthropic/claude-sonnet",
        "scratch",
        "research",
        "allow_with_obligations",
        org={"authorizations": [{"licence": ANTHROPIC, "reference": "contract 2026-17"}]},
        owes={("authorization", "keep the authorisation on record: contract 2026-17")},
    ),
    Case(
        "license-other-unknown-denied",
        "mystery",
        "qwen-apache",
        "research",
        "deny",
        cites={("unknown", "resolution", "refuses")},
    ),
    Case(
        "cc-by-nc-data-commercial-denied",
        "deepseek-r1",
        "scratch",
        "commercial",
        "deny",
        data=[{"name": "nc-prompts", "license": "cc-by-nc-4.0"}],
        cites={("CC-BY-NC-4.0", "2(a)(1), 1 NonCommercial", "refuses")},
    ),
    Case(
        "cc-by-nc-data-research-allowed",
        "deepseek-r1",
        "scratch",
        "research",
        "allow_with_obligations",
        data=[{"name": "nc-prompts", "license": "cc-by-nc-4.0"}],
        cites={("CC-BY-NC-4.0", "2(a)(1), 1 NonCommercial", "permits")},
        owes={
            (
                "attribution",
                "identification of the creator(s), the copyright notice and a "
                "notice referring to CC BY-NC 4.0",
            )
        },
    ),
    Case(
        "cc-by-nc-data-internal-counts-commercial",
        "deepseek-r1",
        "scratch",
        "internal",
        "deny",
        data=[{"path": "data/nc.jsonl", "license": "CC-BY-NC-4.0"}],
        cites={("CC-BY-NC-4.0", "2(a)(1), 1 NonCommercial", "refuses")},
    ),
    Case(
        "cc-by-nc-data-internal-as-research-by-org",
        "deepseek-r1",
        "scratch",
        "internal",
        "allow_with_obligations",
        org={"internal_use_counts_as": "research"},
        data=[{"path": "data/nc.jsonl", "license": "cc-by-nc-4.0"}],
    ),
    Case(
        "cc0-data-commercial-allowed-owes-nothing",
        "deepseek-r1",
        "scratch",
        "commercial",
        "allow",
        data=[{"path": "data/cc0.csv", "license": "cc0-1.0"}],
        cites={("CC0-1.0", "1, 2", "permits")},
        owes_nothing_from="CC0-1.0",
    ),
    Case(
        "cc-by-sa-data-share-alike",
        "deepseek-r1",
        "scratch",
        "commercial",
        "allow_with_obligations",
        data=[{"name": "wiki", "license": "cc-by-sa-4.0"}],
        owes={
            (
                "share_alike",
                "license the student under CC BY-SA 4.0 (or later) or a BY-SA Compatible License",
            )
        },
    ),
    Case(
        "tongyi-into-qwen-apache-denied",
        "tongyi",
        "qwen-apache",
        "commercial",
        "deny",
        cites={(TQ, "5.b", "refuses")},
    ),
    Case(
        "tongyi-into-tongyi-user-cap",
        "tongyi",
        "tongyi",
        "commercial",
        "allow_with_obligations",
        cites={(TQ, "5.b", "permits")},
        owes={
            ("user_cap", "confirm at most 100,000,000 monthly active users, or obtain a licence")
        },
    ),
    Case(
        "tongyi-research-commercial-denied",
        "tongyi-research",
        "tongyi-research",
        "commercial",
        "deny",
        cites={(TQR, "2.a, 1.i, 2.b", "refuses")},
    ),
    Case(
        "tongyi-research-research-allowed",
        "tongyi-research",
        "tongyi",
        "research",
        "allow_with_obligations",
        cites={(TQR, "4.b", "permits")},
    ),
    Case(
        "qwen-research-commercial-denied",
        "qwen-research",
        "qwen-apache",
        "commercial",
        "deny",
        cites={(QR, "2.a, 1 Non-Commercial", "refuses")},
    ),
    Case(
        "qwen-research-research-built-with",
        "qwen-research",
        "qwen-apache",
        "research",
        "allow_with_obligations",
        owes={("built_with", "Built with Qwen")},
    ),
    Case(
        "mistral-research-commercial-denied",
        "mistral-large",
        "qwen-apache",
        "commercial",
        "deny",
        cites={(MRL, "3.2, 9 Research Purposes", "refuses")},
    ),
    Case(
        "mistral-research-research-allowed",
        "mistral-large",
        "qwen-apache",
        "research",
        "allow_with_obligations",
        cites={(MRL, "3.2, 4.2", "permits")},
    ),
    Case(
        "falcon-commercial-silent-refused",
        "falcon2",
        "qwen-apache",
        "commercial",
        "deny",
        cites={(FALCON, "silent_on: commercial", "refuses")},
    ),
    Case(
        "falcon-commercial-silence-allowed-by-org",
        "falcon2",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        org={"silence": "allow"},
        cites={(FALCON, "silent_on: commercial", "notes")},
    ),
    Case(
        "bloom-rail-student-is-derivative",
        "bloomz",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        cites={
            ("LicenseRef-scancode-bigscience-rail-1.0", "1.5", "obliges"),
            ("LicenseRef-scancode-bigscience-rail-1.0", "4", "permits"),
        },
        owes={("licence_copy", "the BigScience RAIL License v1.0")},
    ),
    Case(
        "openrail-m-research-pass-through",
        "openrail-m",
        "qwen-apache",
        "research",
        "allow_with_obligations",
        owes={
            (
                "pass_through_use_restrictions",
                "the use-based restrictions of paragraph 5 and Attachment A",
            )
        },
    ),
    Case(
        "api-generations-as-data-denied",
        "deepseek-r1",
        "scratch",
        "research",
        "deny",
        data=[{"name": "gpt4-logs", "license": "api:openai"}],
        cites={(OPENAI, "Terms of Use: What you cannot do, Business Terms (e)", "refuses")},
    ),
    Case(
        "unknown-data-licence-denied",
        "deepseek-r1",
        "scratch",
        "research",
        "deny",
        data=[{"name": "scraped", "license": "my-own-terms"}],
        cites={("unknown", "resolution", "refuses")},
    ),
    Case(
        "llama3.1-mau-over-cap-denied",
        "llama3.1",
        "qwen-apache",
        "commercial",
        "deny",
        org={"monthly_active_users": 800_000_000},
        cites={(L31, "2", "refuses")},
    ),
    Case(
        "llama3.1-mau-under-cap",
        "llama3.1",
        "qwen-apache",
        "commercial",
        "allow_with_obligations",
        org={"monthly_active_users": 1000},
        cites={(L31, "2", "permits")},
    ),
    Case(
        "research-student-base-commercial-denied",
        "deepseek-r1",
        "qwen-research",
        "commercial",
        "deny",
        cites={(QR, "2.a, 1 Non-Commercial", "refuses")},
    ),
    Case(
        "r1-distill-llama-lineage",
        "r1-distill-llama",
        "scratch",
        "commercial",
        "allow_with_obligations",
        cites={("MIT", "grant", "permits"), (L31, "1.a, 1.b.i", "permits")},
        owes={("name_prefix", "Llama")},
    ),
    Case(
        "org-forbids-commercial-use",
        "deepseek-r1",
        "scratch",
        "commercial",
        "deny",
        org={"allowed_uses": ["research"]},
        cites={("org-policy", "allowed_uses", "refuses")},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decision_table(run_gate: Run, case: Case) -> None:
    decision = run_gate(
        case.teacher,
        case.student,
        case.use,
        data=case.data,
        org=case.org,
        student_name=case.student_name,
    )
    cited = {(r.licence, r.clause, r.outcome) for r in decision.reasons}
    owed = {(o.kind, o.text) for o in decision.obligations}
    assert decision.decision == case.decision, decision.reasons
    assert case.cites <= cited, cited
    assert case.owes <= owed, owed
    if case.owes_nothing_from:
        assert all(o.licence != case.owes_nothing_from for o in decision.obligations)
    assert all(r.quote for r in decision.reasons if r.licence not in ("unknown", "org-policy"))
    assert len(decision.policy_hash) == 64


def test_table_covers_thirty_combinations() -> None:
    assert len(CASES) >= 30


def test_name_prefix_is_met_when_the_student_name_starts_with_it(run_gate: Run) -> None:
    decision = run_gate("llama3.1", "qwen-apache", "research", student_name="Llama-tiny")
    prefix = next(o for o in decision.obligations if o.kind == "name_prefix")
    assert (prefix.text, prefix.status) == ("Llama", "met")
    other = run_gate("llama3.1", "qwen-apache", "research", student_name="tiny")
    assert next(o for o in other.obligations if o.kind == "name_prefix").status == "to_do"


def test_decision_records_the_hash_of_every_policy_file_it_used(run_gate: Run) -> None:
    decision = run_gate(
        "llama3.1", "qwen-apache", "research", data=[{"name": "p", "license": "cc-by-4.0"}]
    )
    names = {path.rsplit("/", 1)[-1] for path in decision.policy_files}
    assert names == {"org.yaml", "llama-3.1.yaml", "apache-2.0.yaml", "cc-by-4.0.yaml"}
    changed = run_gate(
        "llama3.1",
        "qwen-apache",
        "research",
        data=[{"name": "p", "license": "cc-by-4.0"}],
        org={"silence": "allow"},
    )
    assert changed.policy_hash != decision.policy_hash


def test_org_policy_naming_an_unknown_licence_is_refused(run_gate: Run) -> None:
    from policies.exceptions import PolicyFileError

    with pytest.raises(
        PolicyFileError,
        match=r"org\.yaml:2: field 'attest_not_competing\.0': LicenseRef-opnai is not a licence id",
    ):
        run_gate("api:openai/gpt-4o", "scratch", org={"attest_not_competing": ["LicenseRef-opnai"]})
