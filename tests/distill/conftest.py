"""A fixture that writes models, a job spec and an org policy into tmp_path and asks the gate."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from distill.spec import load_job_spec
from policies.gate import Decision, check, load_org_policy
from tests.distill.cards import CARDS, Run, write_model


@pytest.fixture
def run_gate(tmp_path: Path) -> Run:
    """Write the models, the job spec and the org policy, then ask the gate."""

    def run(
        teacher: str,
        student: str,
        use: str = "commercial",
        data: list[dict[str, str]] | None = None,
        org: dict[str, Any] | None = None,
        student_name: str = "acme-student",
        teacher_license: str | None = None,
    ) -> Decision:
        models = tmp_path / "models"
        for name in (teacher, student):
            if name in CARDS and not (models / name).exists():
                write_model(models, name, CARDS[name])
        scratch = tmp_path / "scratch-config.json"
        scratch.write_text('{"hidden_size": 64}', encoding="utf-8")
        spec: dict[str, Any] = {
            "teacher": teacher if teacher.startswith(("api:", "http")) else f"models/{teacher}",
            "student": "scratch-config.json" if student == "scratch" else f"models/{student}",
            "student_name": student_name,
            "method": "output",
            "data": data or [],
            "use": use,
            "output_dir": "out",
        }
        if teacher_license:
            spec["teacher_license"] = teacher_license
        job = tmp_path / "job.yaml"
        job.write_text(yaml.safe_dump(spec), encoding="utf-8")
        org_path = tmp_path / "org.yaml"
        org_path.write_text(yaml.safe_dump(org or {}), encoding="utf-8")
        return check(load_job_spec(job).model, org=load_org_policy(org_path))

    return run


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny models built once per session from configs (see ``tests/distill/tiny.py``)."""
    from tests.distill import tiny

    root = tmp_path_factory.mktemp("tiny-models")
    tiny.bert(root / "bert-teacher", hidden=32, layers=4)
    tiny.bert(root / "bert-student", hidden=16, layers=2, seed=1)
    tiny.bert(root / "bert-4-heads", hidden=32, layers=4, seed=2, heads=4)
    tiny.llama(root / "llama-teacher", hidden=32, layers=2)
    tiny.llama(root / "llama-student", hidden=16, layers=1, vocab_pad=6, seed=1)
    tiny.llama(root / "llama-other-tokenizer", hidden=16, layers=1, seed=2)
    tiny.wordlevel_tokenizer(root / "llama-other-tokenizer")
    return root


@pytest.fixture
def workdir(tmp_path: Path, tiny_models: Path) -> Callable[..., Path]:
    """Copy tiny models into ``tmp_path`` as ``teacher`` / ``student``, with prompts, licence."""
    from tests.distill import tiny

    def make(teacher: str, student: str, card: str | None = None) -> Path:
        for role, name in (("teacher", teacher), ("student", student)):
            shutil.copytree(tiny_models / name, tmp_path / role)
        if card is not None:
            (tmp_path / "teacher" / "README.md").write_text(card, encoding="utf-8")
        tiny.prompts(tmp_path)
        tiny.apache_text(tmp_path)
        return tmp_path

    return make
