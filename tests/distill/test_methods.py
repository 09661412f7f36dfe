"""One end-to-end CPU job per method on tiny models; the vocabulary rules of logit distillation."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from distill.exceptions import DistillError, VocabularyMismatch
from distill.job import run_job
from tests.distill import tiny

Workdir = Callable[..., Path]
FAST = {
    "batch_size": 4,
    "epochs": 3,
    "learning_rate": 5e-3,
    "eval_fraction": 0.25,
    "max_length": 24,
}


def _losses(folder: Path) -> list[float]:
    lines = (folder / "out" / "run" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


@pytest.mark.parametrize("loss", ["forward_kl", "reverse_kl", "jsd"])
def test_logit_online_with_padded_student_vocabulary(workdir: Workdir, loss: str) -> None:
    folder = workdir("llama-teacher", "llama-student")  # student: 30,522 tokens + 6 padding rows
    hp = {**FAST, "loss": loss, "temperature": 2.0, "alpha": 0.5, "beta": 0.3}
    record = run_job(tiny.job(folder, method="logit", hyperparameters=hp), device="cpu").provenance
    losses = _losses(folder)
    assert sum(losses[-3:]) < sum(losses[:3])
    metrics = record["metrics"]
    assert metrics["eval_on_held_out"] == 1.0 and metrics["eval_kl_teacher_student"] >= 0
    assert 0 <= metrics["eval_top1_agreement"] <= 1
    from transformers import AutoModelForCausalLM

    student = AutoModelForCausalLM.from_pretrained(str(folder / "out"))
    assert student.config.vocab_size == 30522 + 6


def test_logit_offline_trains_from_the_top_k_cache(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-student")
    hp = {**FAST, "offline": True, "top_k": 8}
    run_job(tiny.job(folder, method="logit", hyperparameters=hp), device="cpu")
    [cache] = (folder / "out" / "run" / "cache").glob("teacher-topk-*.pt")
    import torch

    stored = torch.load(cache, weights_only=True)
    assert len(stored["indices"]) == len(stored["logprobs"]) > 0
    assert stored["indices"][0].shape[-1] == 8
    losses = _losses(folder)
    assert sum(losses[-3:]) < sum(losses[:3])


def test_offline_mode_refuses_a_loss_it_cannot_compute(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-student")
    hp = {"offline": True, "loss": "jsd"}
    with pytest.raises(DistillError, match="offline mode trains forward_kl"):
        run_job(tiny.job(folder, method="logit", hyperparameters=hp), device="cpu")


def test_logit_with_a_different_tokenizer_names_both_vocabularies(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-other-tokenizer")
    with pytest.raises(VocabularyMismatch) as caught:
        run_job(tiny.job(folder, method="logit", hyperparameters=FAST), device="cpu")
    message = str(caught.value)
    assert "has 30522 tokens" in message and "the student's 10" in message
    assert "same tokenizer" in message


def test_output_method_teacher_generates_and_student_learns(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-student")
    hp = {**FAST, "max_new_tokens": 6, "max_length": 32}
    job = tiny.job(folder, method="output", hyperparameters=hp)
    record = run_job(job, device="cpu").provenance
    [generated_file] = (folder / "out" / "run").glob("generations-train-*.jsonl")
    [held_file] = (folder / "out" / "run").glob("generations-eval-*.jsonl")
    generated = generated_file.read_text().splitlines()
    held = held_file.read_text().splitlines()
    assert len(generated) + len(held) == 24
    assert all(json.loads(line)["response"] for line in generated)
    assert record["report"]["train_responses"] == len(generated)
    assert record["metrics"]["eval_on_held_out"] == 1.0
    assert 0 <= record["metrics"]["eval_teacher_token_agreement"] <= 1
    losses = _losses(folder)
    assert sum(losses[-3:]) < sum(losses[:3])


def test_reasoning_trace_keeps_only_traces_whose_answer_checks_out(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-student")
    records = [
        {
            "question": "Ann has 2 apples and buys 2. How many?",
            "answer": "2+2=4\n#### 4",
            "response": "She had 2, bought 2 more: 2 + 2 = 4. The answer is 4",
        },
        {
            "question": "Tom has 10 pens and loses 3. How many?",
            "answer": "10-3=7\n#### 7",
            "response": "10 - 3 = 6. The answer is 6",
        },
        {
            "question": "A pack costs 1,200 dollars; two packs?",
            "answer": "#### 2,400",
            "response": "2 x 1,200 = 2,400. The answer is 2,400",
        },
        {
            "Body": "Each pack costs 76 dollars with 25 off.",
            "Question": "What do you pay?",
            "Answer": 51.0,
            "response": "76 - 25 = 51",
        },
        {
            "Body": "A box holds 6 eggs.",
            "Question": "How many in 3 boxes?",
            "Answer": 18.0,
            "response": "6 x 3 = 17",
        },
        {"prompt": "Say hello politely.", "response": "Hello, nice to meet you."},
    ]
    path = folder / "traces.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    data = [{"path": "traces.jsonl", "license": "mit"}]
    hp = {**FAST, "eval_fraction": 0.0, "max_length": 48}
    job = tiny.job(folder, method="reasoning_trace", data=data, hyperparameters=hp)
    record = run_job(job, device="cpu").provenance
    report = record["report"]
    assert report["train_traces_kept"] == 3
    assert report["train_traces_rejected"] == 2
    assert report["train_traces_unchecked"] == 1
    assert report["train_traces_used"] == 4
    assert record["training"]["total_steps"] == 3  # 4 traces, batch 4, 3 epochs


def test_reasoning_trace_with_every_trace_wrong_refuses_to_train(workdir: Workdir) -> None:
    folder = workdir("llama-teacher", "llama-student")
    path = folder / "traces.jsonl"
    path.write_text(json.dumps({"question": "1+1?", "answer": "#### 2", "response": "3"}) + "\n")
    data = [{"path": "traces.jsonl", "license": "mit"}]
    job = tiny.job(
        folder, method="reasoning_trace", data=data, hyperparameters={"eval_fraction": 0.0}
    )
    with pytest.raises(DistillError, match="no teacher response is left"):
        run_job(job, device="cpu")


def test_output_method_with_an_api_teacher_the_org_attests(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx2

    asked: list[str] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        asked.append(body["messages"][0]["content"])
        reply = {
            "id": "c1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"reply {len(asked)}"},
                }
            ],
        }
        return httpx2.Response(200, json=reply)

    from distill import api_teacher

    monkeypatch.setattr(
        api_teacher, "http_client", lambda: httpx2.Client(transport=httpx2.MockTransport(upstream))
    )
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    folder = workdir("llama-teacher", "llama-student")
    org = folder / "org.yaml"
    org.write_text("attest_not_competing: [LicenseRef-openai-terms-of-use]\n")
    hp = {**FAST, "max_new_tokens": 8, "max_length": 32, "prompt_template": "Q: {prompt}"}
    job = tiny.job(folder, teacher="api:openai/gpt-test", method="output", hyperparameters=hp)
    record = run_job(job, device="cpu", org=org).provenance
    assert len(asked) == 24 and asked[0].startswith("Q: tell me fact")
    assert record["teacher"]["licences"] == ["LicenseRef-openai-terms-of-use"]
    assert any(o["kind"] == "attestation" for o in record["obligations"])
    [generations] = (folder / "out" / "run").glob("generations-train-*.jsonl")
    lines = generations.read_text().splitlines()
    assert all(json.loads(line)["response"].startswith("reply ") for line in lines)


def test_api_teacher_without_a_key_is_a_clear_error(
    workdir: Workdir, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    folder = workdir("llama-teacher", "llama-student")
    org = folder / "org.yaml"
    org.write_text("attest_not_competing: [LicenseRef-openai-terms-of-use]\n")
    job = tiny.job(folder, teacher="api:openai/gpt-test", method="output")
    with pytest.raises(DistillError, match=r"teacher api:openai/gpt-test: OpenAIError"):
        run_job(job, device="cpu", org=org)


@pytest.mark.parametrize("name", ["logit", "hidden_state", "output", "reasoning_trace"])
def test_every_method_is_documented_importable_and_tested_end_to_end(name: str) -> None:
    import importlib

    from distill.methods import METHODS

    assert set(METHODS) == {"logit", "hidden_state", "output", "reasoning_trace"}
    entry = METHODS[name]
    undocumented = [f for f, info in entry.config.model_fields.items() if not info.description]
    assert undocumented == []
    module, _, cls = entry.trainer.partition(":")
    trainer = getattr(importlib.import_module(module), cls)
    for hook in ("prepare", "trainable", "example_lengths", "loss", "evaluate", "save_student"):
        assert callable(getattr(trainer, hook, None)), f"{cls}.{hook}"
    here = Path(__file__).read_text() + (Path(__file__).parent / "test_run.py").read_text()
    assert f'method="{name}"' in here or name == "hidden_state"  # tiny.job's default method
