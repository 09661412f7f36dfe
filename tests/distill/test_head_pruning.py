"""Attention-head pruning of a BERT student: importance per head, the kept heads, the saved model
(a distillguard pruned BERT) loading in distill, transformers and the detectors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel

from detectors.embeddings import load_embedder
from distill.exceptions import DistillError, JobInterrupted
from distill.job import run_job
from distill.models import attention_importance, prune_attention_heads
from distillguard.encoders import (
    MODEL_TYPE,
    PrunedBertConfig,
    PrunedBertModel,
    layer_sizes,
    register,
)
from tests.distill import tiny

Workdir = Callable[..., Path]
_HEAD = 8  # the 4-head tiny teacher: hidden 32, heads of 8
_TWO_LAYERS = tiny.TWO_LAYERS


def _batch(texts: list[str]) -> dict[str, torch.Tensor]:
    return dict(tiny.minilm_tokenizer()(texts, padding=True, return_tensors="pt"))


def test_heads_that_add_nothing_are_the_ones_pruned(tiny_models: Path) -> None:
    model = AutoModel.from_pretrained(str(tiny_models / "bert-4-heads")).eval()
    silent = [1, 3]  # these heads write nothing through the output projection
    with torch.no_grad():
        for layer in model.encoder.layer:
            for head in silent:
                layer.attention.output.dense.weight[:, head * _HEAD : (head + 1) * _HEAD] = 0.0
    batch = _batch(["tell me about cats", "a longer prompt about prime numbers"])
    before = model(**batch).last_hidden_state

    importance = attention_importance(model, [batch])
    assert [len(scores) for scores in importance] == [4, 4, 4, 4]
    assert all(float(scores[silent].max()) == 0.0 for scores in importance)
    assert all(float(scores[[0, 2]].min()) > 0.0 for scores in importance)
    pruned = prune_attention_heads(model, 2, importance)

    assert isinstance(pruned, PrunedBertModel)
    assert layer_sizes(pruned) == ([2, 2, 2, 2], [64, 64, 64, 64])
    assert pruned.encoder.layer[0].attention.self.query.weight.shape == (2 * _HEAD, 32)
    assert pruned.encoder.layer[0].attention.output.dense.weight.shape == (32, 2 * _HEAD)
    after = pruned.eval()(**batch).last_hidden_state
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_pruning_to_as_many_heads_or_a_model_that_is_not_bert_is_an_error(
    tiny_models: Path,
) -> None:
    model = AutoModel.from_pretrained(str(tiny_models / "bert-4-heads"))
    scores = [torch.ones(4) for _ in model.encoder.layer]
    with pytest.raises(DistillError, match="attention_heads 4: the layers have 4 heads"):
        prune_attention_heads(model, 4, scores)
    llama = AutoModel.from_pretrained(str(tiny_models / "llama-teacher"))
    with pytest.raises(DistillError, match="needs a BERT encoder; the student is LlamaModel"):
        prune_attention_heads(llama, 1, [torch.ones(2)] * 2)
    with pytest.raises(DistillError, match=r"BERT layers .* LlamaDecoderLayer has none"):
        attention_importance(llama, [])


def test_layer_sizes_must_name_every_layer() -> None:
    with pytest.raises(ValueError, match=r"layer_heads \[2\]: expected one positive size for each"):
        PrunedBertConfig(layer_heads=[2], num_hidden_layers=2, hidden_size=32)
    with pytest.raises(ValueError, match=r"layer_ffn_sizes \[8, 0\]"):
        PrunedBertConfig(layer_ffn_sizes=[8, 0], num_hidden_layers=2, hidden_size=32)


def test_a_head_pruned_student_saves_loads_and_embeds_for_the_detectors(
    workdir: Workdir,
) -> None:
    folder = workdir("bert-4-heads", "bert-4-heads")
    hp = {**_TWO_LAYERS, "attention_heads": 2, "ffn_size": 40, "epochs": 2}
    record = run_job(tiny.job(folder, hyperparameters=hp), device="cpu").provenance
    assert record["hyperparameters"]["attention_heads"] == 2
    assert record["metrics"]["eval_cosine_mean"] > 0.5

    config = json.loads((folder / "out" / "config.json").read_text())
    assert config["model_type"] == MODEL_TYPE
    assert (config["layer_heads"], config["layer_ffn_sizes"]) == ([2, 2], [40, 40])
    register()
    student = AutoModel.from_pretrained(str(folder / "out"))
    assert isinstance(student, PrunedBertModel)
    assert student.encoder.layer[1].attention.self.value.out_features == 2 * _HEAD

    embedder = load_embedder(folder / "out", "cpu", batch_size=4, max_seq_length=32)
    vectors = embedder.encode(["tell me about cats", "what is 2 + 2?"])
    assert vectors.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)

    # a pruned student is the base of a further job: fewer units, sizes recorded again
    second = {**hp, "student_layers": None, "attention_heads": None, "ffn_size": 24}
    path = tiny.job(folder, student="out", output_dir="out-2", hyperparameters=second)
    run_job(path, device="cpu")
    config = json.loads((folder / "out-2" / "config.json").read_text())
    assert (config["layer_heads"], config["layer_ffn_sizes"]) == ([2, 2], [24, 24])


def test_a_head_pruned_job_resumes_like_an_uninterrupted_run(workdir: Workdir) -> None:
    folder = workdir("bert-4-heads", "bert-4-heads")
    hp = {**_TWO_LAYERS, "attention_heads": 3, "batch_size": 4, "epochs": 1}
    hp["checkpoint_every"] = 2
    job = tiny.job(folder, hyperparameters=hp)
    with pytest.raises(JobInterrupted, match="stopped after 3 of 6 steps"):
        run_job(job, device="cpu", stop_after=3)
    record = run_job(job, device="cpu", resume=True).provenance
    assert record["training"]["resumed_from"] == 3

    run_job(tiny.job(folder, hyperparameters=hp, output_dir="straight"), device="cpu")
    tiny.assert_same_weights(folder / "out", folder / "straight")
