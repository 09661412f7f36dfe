"""Obligations: refused before training when they cannot be met; written or stated when they can."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.obligations import fulfil, precheck
from distill.provenance import model_card
from distill.spec import load_job_spec
from policies.gate import Decision, DecisionObligation
from tests.distill import tiny
from tests.distill.cards import CARDS, Run, write_model


def _spec(tmp_path: Path, teacher: str, student: str, **extra: object):  # type: ignore[no-untyped-def]
    for name in {teacher, student}:
        if not (tmp_path / "models" / name).exists():
            write_model(tmp_path / "models", name, CARDS[name])
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "hi"}\n')
    job = tiny.job(
        tmp_path,
        teacher=f"models/{teacher}",
        student=f"models/{student}",
        method="output",
        licence_texts={},
        use="commercial",
        **extra,
    )
    return load_job_spec(job).model


def test_gemma_student_states_use_restrictions_and_writes_notice(
    tmp_path: Path, run_gate: Run
) -> None:
    decision = run_gate("gemma", "qwen-apache")
    spec = _spec(tmp_path, "gemma", "qwen-apache")
    out = tmp_path / "student-out"
    out.mkdir()
    gemma_text = "Gemma Terms of Use\n"
    spec = spec.model_copy(
        update={
            "licence_texts": {
                "gemma": str(tmp_path / "gemma.txt"),
                "Apache-2.0": str(tiny.apache_text(tmp_path)),
            }
        }
    )
    (tmp_path / "gemma.txt").write_text(gemma_text)
    precheck(decision, spec)
    met = fulfil(decision, spec, out)
    assert {m.obligation.kind for m in met} >= {"pass_through_use_restrictions", "notice"}
    assert (out / "LICENSES" / "LicenseRef-gemma-terms-of-use.txt").read_text() == gemma_text
    assert (
        "Gemma is provided under and subject to the Gemma Terms of Use"
        in (out / "NOTICE").read_text()
    )
    record = {
        "gate": decision.model_dump(mode="json"),
        "created_at": "2026-11-28T00:00:00+00:00",
        "data": [],
        "metrics": {},
    }
    card = model_card(record, spec, met)
    assert "### Use restrictions (passed through to every user)" in card
    assert "the Gemma use restrictions of Section 3.2 and the Prohibited Use Policy" in card


def test_missing_licence_copy_is_refused_before_training(tmp_path: Path, run_gate: Run) -> None:
    decision = run_gate("gemma", "qwen-apache")
    spec = _spec(tmp_path, "gemma", "qwen-apache")
    with pytest.raises(Exception, match=r"requires a copy of the Gemma Terms of Use") as caught:
        precheck(decision, spec)
    assert "licence_texts: {LicenseRef-gemma-terms-of-use: PATH}" in str(caught.value)
    assert caught.value.exit_code == 3  # type: ignore[attr-defined]


def test_a_licence_text_that_reads_as_another_licence_is_refused(
    tmp_path: Path, run_gate: Run
) -> None:
    decision = run_gate("qwen-apache", "qwen-apache")
    spec = _spec(tmp_path, "qwen-apache", "qwen-apache")
    mit = tmp_path / "not-apache.txt"
    mit.write_text(
        "Permission is hereby granted, free of charge, to any person obtaining a copy\n"
        'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND\n'
    )
    spec = spec.model_copy(update={"licence_texts": {"apache-2.0": str(mit)}})
    with pytest.raises(Exception, match=r"reads as MIT, not Apache-2.0"):
        precheck(decision, spec)


def test_an_obligation_kind_distillguard_cannot_meet_refuses_the_job(
    tmp_path: Path, run_gate: Run
) -> None:
    decision = run_gate("qwen-apache", "qwen-apache")
    odd = DecisionObligation(
        kind="share_weights_publicly",
        text="publish the weights",
        role="teacher",
        licence="X",
        clause="9",
        applies_when="always",
    )
    decision = Decision.model_validate({**decision.model_dump(), "obligations": [odd.model_dump()]})
    spec = _spec(tmp_path, "qwen-apache", "qwen-apache")
    with pytest.raises(Exception, match=r"X 9 obliges 'share_weights_publicly'"):
        precheck(decision, spec)


def test_cc_by_data_needs_attribution_and_accepts_the_licence_uri(
    tmp_path: Path, run_gate: Run
) -> None:
    data = [
        {"path": "prompts.jsonl", "license": "cc-by-4.0"},
        {"path": "more.jsonl", "license": "cc-by-4.0"},
    ]
    decision = run_gate("qwen-apache", "qwen-apache", data=data)
    spec = _spec(
        tmp_path,
        "qwen-apache",
        "qwen-apache",
        data=data,
    )
    spec = spec.model_copy(
        update={"licence_texts": {"Apache-2.0": str(tiny.apache_text(tmp_path))}}
    )
    with pytest.raises(Exception, match=r"requires attribution .* give it as attribution:"):
        precheck(decision, spec)
    first = spec.data[0].model_copy(update={"attribution": "Doe et al."})
    half = spec.model_copy(update={"data": [first, spec.data[1]]})
    with pytest.raises(Exception, match=r"for data .*more.jsonl; give it") as caught:
        precheck(decision, half)
    assert "prompts.jsonl" not in str(caught.value)
    second = spec.data[1].model_copy(update={"attribution": "Roe et al."})
    credited = spec.model_copy(update={"data": [first, second]})
    precheck(decision, credited)
    out = tmp_path / "o"
    out.mkdir()
    met = {
        m.obligation.kind + ":" + m.obligation.licence: m.how
        for m in fulfil(decision, credited, out)
    }
    assert "Doe et al." in met["attribution:CC-BY-4.0"]
    assert "Roe et al." in met["attribution:CC-BY-4.0"]
    assert "creativecommons.org/licenses/by/4.0" in (out / "LICENSES" / "CC-BY-4.0.txt").read_text()
    assert json.dumps(met)


def test_data_keeps_its_attribution_when_the_teacher_shares_its_licence(
    tmp_path: Path, run_gate: Run
) -> None:
    write_model(tmp_path / "models", "cc-teacher", {"license": "cc-by-4.0"})
    data = [{"path": "prompts.jsonl", "license": "cc-by-4.0"}]
    decision = run_gate("cc-teacher", "qwen-apache", data=data)
    attributions = [o for o in decision.obligations if o.kind == "attribution"]
    assert [(o.role.split()[0], o.licence) for o in attributions] == [
        ("teacher", "CC-BY-4.0"),
        ("data[0]", "CC-BY-4.0"),
    ]
    assert (
        len([o for o in decision.obligations if o.kind == "licence_copy"]) == 2
    )  # one per licence
    spec = _spec(tmp_path, "cc-teacher", "qwen-apache", data=data)
    spec = spec.model_copy(
        update={"licence_texts": {"Apache-2.0": str(tiny.apache_text(tmp_path))}}
    )
    with pytest.raises(Exception, match=r"requires attribution .* for data .*prompts.jsonl"):
        precheck(decision, spec)
    credited = spec.data[0].model_copy(update={"attribution": "Doe et al."})
    spec = spec.model_copy(update={"data": [credited]})
    precheck(decision, spec)
    out = tmp_path / "o"
    out.mkdir()
    hows = [m.how for m in fulfil(decision, spec, out) if m.obligation.kind == "attribution"]
    assert any("Doe et al." in how for how in hows)
