"""Cached teacher outputs belong to one teacher and its settings: another teacher regenerates."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from distill.data import Example, teacher_cache_key
from distill.exceptions import JobInterrupted
from distill.job import run_job
from distill.output_config import OutputConfig
from distill.output_trainer import OutputTrainer
from distill.spec import JobSpec
from distill.trainer import JobContext
from tests.distill import tiny

PROMPTS = [Example("what is 2 + 2?"), Example("name a prime")]


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A mock OpenAI API (the network edge) answering as the model asked for; lists the models."""
    import httpx2

    from distill import api_teacher

    asked: list[str] = []

    def reply(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        asked.append(body["model"])
        message = {"role": "assistant", "content": f"{body['model']} says hi"}
        choice = {"index": 0, "finish_reason": "stop", "message": message}
        return httpx2.Response(
            200,
            json={"id": "c", "object": "chat.completion", "created": 0, "model": body["model"]}
            | {"choices": [choice]},
        )

    monkeypatch.setattr(
        api_teacher, "http_client", lambda: httpx2.Client(transport=httpx2.MockTransport(reply))
    )
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return asked


def _answers(run_dir: Path, teacher: str, **config: object) -> list[str]:
    spec = JobSpec.model_validate(
        {
            "teacher": teacher,
            "student": str(run_dir),
            "student_name": "s",
            "method": "output",
            "data": [{"name": "prompts", "license": "mit"}],
            "use": "research",
            "output_dir": str(run_dir),
        }
    )
    ctx = JobContext(spec, PROMPTS, [], torch.device("cpu"), run_dir)
    trainer = OutputTrainer(ctx, OutputConfig.model_validate(config))
    return [response for _, response in trainer._responses(PROMPTS, "train")]


def test_another_api_teacher_does_not_reuse_the_generations(
    tmp_path: Path, upstream: list[str]
) -> None:
    assert _answers(tmp_path, "api:openai/gpt-a") == ["gpt-a says hi"] * 2
    assert _answers(tmp_path, "api:openai/gpt-a") == ["gpt-a says hi"] * 2
    assert upstream == ["gpt-a"] * 2  # the same teacher again (a resumed job): reused
    assert _answers(tmp_path, "api:openai/gpt-b") == ["gpt-b says hi"] * 2
    assert upstream[2:] == ["gpt-b"] * 2


def test_other_generation_settings_do_not_reuse_the_generations(
    tmp_path: Path, upstream: list[str]
) -> None:
    _answers(tmp_path, "api:openai/gpt-a")
    _answers(tmp_path, "api:openai/gpt-a", prompt_template="Q: {prompt}\nA:")
    _answers(tmp_path, "api:openai/gpt-a", max_new_tokens=7)
    assert len(upstream) == 6


def test_a_local_teacher_is_known_by_its_files(tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    (teacher / "model.safetensors").write_bytes(b"weights one")
    key = teacher_cache_key(str(teacher), top_k=8)
    assert teacher_cache_key(str(teacher), top_k=8) == key
    assert teacher_cache_key(str(teacher), top_k=4) != key
    (teacher / "model.safetensors").write_bytes(b"weights two")  # retrained in place
    assert teacher_cache_key(str(teacher), top_k=8) != key
    moved = tmp_path / "other"
    shutil.copytree(teacher, moved)
    assert teacher_cache_key(str(moved), top_k=8) != teacher_cache_key(str(teacher), top_k=8)


def test_offline_logit_cache_is_rebuilt_for_a_retrained_teacher(
    workdir: Callable[..., Path],
) -> None:
    folder = workdir("llama-teacher", "llama-student")
    hp = {"batch_size": 4, "epochs": 1, "max_length": 24, "offline": True, "top_k": 4}
    job = tiny.job(folder, method="logit", hyperparameters=hp)
    with pytest.raises(JobInterrupted):
        run_job(job, device="cpu", stop_after=1)
    cache = folder / "out" / "run" / "cache"
    [first] = cache.glob("teacher-topk-*.pt")
    tiny.llama(folder / "teacher", hidden=32, layers=2, seed=7)  # the teacher is retrained
    shutil.rmtree(folder / "out" / "run" / "checkpoints")
    run_job(job, device="cpu")
    [second] = set(cache.glob("teacher-topk-*.pt")) - {first}
    old, new = (torch.load(p, weights_only=True)["logprobs"][0] for p in (first, second))
    assert not torch.equal(old, new)


def test_cached_teacher_embeddings_are_rebuilt_for_a_retrained_teacher(
    workdir: Callable[..., Path],
) -> None:
    folder = workdir("bert-teacher", "bert-student")
    hp = {"batch_size": 4, "epochs": 1, "embedding_loss": "cosine"}
    job = tiny.job(folder, hyperparameters=hp)
    with pytest.raises(JobInterrupted):
        run_job(job, device="cpu", stop_after=1)
    cache = folder / "out" / "run" / "cache"
    [first] = cache.glob("teacher-embeddings-*.pt")
    tiny.bert(folder / "teacher", hidden=32, layers=4, seed=7)  # the teacher is retrained
    shutil.rmtree(folder / "out" / "run" / "checkpoints")
    run_job(job, device="cpu")
    [second] = set(cache.glob("teacher-embeddings-*.pt")) - {first}
    old, new = (torch.load(p, weights_only=True) for p in (first, second))
    assert not torch.equal(old, new)
