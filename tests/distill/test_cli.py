"""``distillguard distill check`` and ``distillguard policies``: exit codes, JSON and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from distill.cli import register as register_distill
from distill.exceptions import JobSpecError
from distill.spec import load_job_spec
from policies.cli import register as register_policies
from policies.exceptions import PolicyFileError
from tests.distill.cards import CARDS, write_model


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Test root."""

    register_distill(app)
    register_policies(app)
    return app


def _job(tmp_path: Path, model: str, **extra: object) -> Path:
    write_model(tmp_path / "models", model, CARDS[model])
    write_model(tmp_path / "models", "qwen-apache", CARDS["qwen-apache"])
    spec = {
        "teacher": f"models/{model}",
        "student": "models/qwen-apache",
        "student_name": "acme",
        "method": "logit",
        "use": "commercial",
        "output_dir": "out",
        **extra,
    }
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_allow_with_obligations_exits_zero_and_prints_json(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        _app(), ["distill", "check", str(_job(tmp_path, "llama3.1")), "--json"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["decision"] == "allow_with_obligations"
    assert len(body["job"]["sha256"]) == 64 and len(body["policy_hash"]) == 64
    assert {"licence", "clause", "quote"} <= set(body["reasons"][0])
    assert any(o["kind"] == "name_prefix" and o["text"] == "Llama" for o in body["obligations"])


def test_deny_exits_two_with_reasons(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["distill", "check", str(_job(tmp_path, "llama3"))])
    assert result.exit_code == 2
    assert "decision: deny" in result.output
    assert "LicenseRef-llama-3-community 1.b.v" in result.output


def test_org_option_changes_the_decision(tmp_path: Path) -> None:
    org = tmp_path / "strict.yaml"
    org.write_text("allowed_uses: [research]\n")
    job = _job(tmp_path, "deepseek-r1")
    result = CliRunner().invoke(_app(), ["distill", "check", str(job), "--org", str(org)])
    assert result.exit_code == 2 and "allowed_uses" in result.output


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"method": "telepathy"}, r"job\.yaml:4: field 'method': input should be 'logit'"),
        ({"colour": "red"}, r"job\.yaml:7: field 'colour': extra inputs are not permitted"),
        ({"data": [{"name": "x"}]}, r"job\.yaml:8: field 'data\.0\.license': field required"),
        ({"student": "api:openai/x"}, r"job\.yaml:2: field 'student': value error"),
    ],
)
def test_invalid_spec_names_file_line_and_field(
    tmp_path: Path, extra: dict[str, object], expected: str
) -> None:
    with pytest.raises(JobSpecError, match=expected):
        load_job_spec(_job(tmp_path, "llama3.1", **extra))


def test_missing_teacher_directory_is_an_invalid_spec(tmp_path: Path) -> None:
    job = _job(tmp_path, "llama3.1", teacher="models/absent")
    with pytest.raises(
        JobSpecError, match=r"job\.yaml:1: field 'teacher': .*absent does not exist"
    ):
        load_job_spec(job)


def test_invalid_spec_exits_one_through_the_root_cli(tmp_path: Path) -> None:
    from distillguard.cli import main

    job = _job(tmp_path, "llama3.1", method="telepathy")
    with pytest.raises(SystemExit) as info:
        main(["distill", "check", str(job)])
    assert info.value.code == 1


def test_policies_validate_shipped_and_a_broken_file(tmp_path: Path) -> None:
    ok = CliRunner().invoke(_app(), ["policies", "validate"])
    assert ok.exit_code == 0, ok.output
    assert "llama-3.1.yaml" in ok.output and "org.yaml" in ok.output
    broken = tmp_path / "org.yaml"
    broken.write_text("silence: shrug\n")
    result = CliRunner().invoke(_app(), ["policies", "validate", str(broken)])
    assert isinstance(result.exception, PolicyFileError)
    assert "org.yaml:1: field 'silence': input should be 'refuse' or 'allow'" in str(
        result.exception
    )


def test_policies_licenses_json_lists_the_registry() -> None:
    result = CliRunner().invoke(_app(), ["policies", "licenses", "--json"])
    assert result.exit_code == 0
    rows = {row["id"]: row for row in json.loads(result.output)}
    assert rows["LicenseRef-llama-3-community"]["train_other_models"]["value"] == "same_family"
    assert rows["CC-BY-NC-4.0"]["commercial"]["value"] == "no"
    assert rows["CC-BY-NC-4.0"]["clauses"][0]["text"].startswith("NonCommercial means")
    text = CliRunner().invoke(_app(), ["policies", "licenses"])
    assert "LicenseRef-gemma-terms-of-use" in text.output


def test_org_policy_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policies.settings import get_settings

    org = tmp_path / "org-research-only.yaml"
    org.write_text("allowed_uses: [research]\n")
    monkeypatch.setenv("POLICIES_ORG_POLICY", str(org))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            _app(), ["distill", "check", str(_job(tmp_path, "deepseek-r1"))]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "the org policy does not allow commercial use" in result.output


def test_gate_reads_cards_but_never_loads_weights(tmp_path: Path) -> None:
    import subprocess
    import sys

    job = _job(tmp_path, "llama3.1")
    (tmp_path / "models" / "llama3.1" / "model.safetensors").write_bytes(b"\x00not weights")
    code = (
        "import sys; from pathlib import Path; from distill.spec import load_job_spec; "
        "from policies.gate import check; "
        f"d = check(load_job_spec(Path({str(job)!r})).model); "
        "assert not {'torch', 'transformers', 'safetensors'} & set(sys.modules), 'heavy import'; "
        "print(d.decision)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "allow_with_obligations"
