"""Feed-forward pruning of a student: importance on real tokens, the kept units, the saved model."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModel

from distill.exceptions import DistillError, JobInterrupted
from distill.hidden_state_config import HiddenStateConfig
from distill.hidden_state_trainer import evenly_spaced
from distill.job import run_job
from distill.models import (
    FeedForwardMasks,
    feed_forward_importance,
    prune_feed_forward,
    prune_schedule,
)
from tests.distill import tiny

Workdir = Callable[..., Path]
_TWO_LAYERS = tiny.TWO_LAYERS


def _batches(tokenizer: object, texts: list[str]) -> list[dict[str, torch.Tensor]]:
    batch = tokenizer(texts, padding=True, return_tensors="pt")  # type: ignore[operator]
    return [dict(batch)]


def test_units_that_add_nothing_are_the_ones_pruned(tiny_models: Path) -> None:
    model = AutoModel.from_pretrained(str(tiny_models / "bert-teacher")).eval()
    tokenizer = tiny.minilm_tokenizer()
    units = model.config.intermediate_size  # 64
    dead = torch.arange(0, units, 4)  # every fourth unit writes nothing to the layer output
    with torch.no_grad():
        for layer in model.encoder.layer:
            layer.output.dense.weight[:, dead] = 0.0
    batches = _batches(tokenizer, ["tell me about cats", "a longer prompt about prime numbers"])
    before = model(**batches[0]).last_hidden_state

    importance = feed_forward_importance(model, batches)
    assert len(importance) == model.config.num_hidden_layers
    assert all(float(scores[dead].max()) == 0.0 for scores in importance)
    assert all(bool(scores.abs().sum() > 0) for scores in importance)
    prune_feed_forward(model, units - len(dead), importance)

    assert model.config.intermediate_size == units - len(dead)
    assert model.encoder.layer[0].intermediate.dense.weight.shape == (units - len(dead), 32)
    assert model.encoder.layer[0].output.dense.weight.shape == (32, units - len(dead))
    after = model(**batches[0]).last_hidden_state
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-5)


def test_importance_is_measured_on_texts_from_every_part_of_the_data() -> None:
    # training texts come file by file: the first 1,024 of the real sets hold no GSM8K at all
    texts = [f"chat {i}" for i in range(3000)] + [f"maths {i}" for i in range(7000)]
    sample = evenly_spaced(texts, 1024)
    chosen = set(sample)
    assert len(sample) == 1024 == len(chosen)
    assert sample[0] == "chat 0" and sample == [t for t in texts if t in chosen]
    assert sum(t.startswith("maths") for t in sample) in range(710, 720)
    assert evenly_spaced(texts[:5], 1024) == texts[:5]


def test_pruning_to_as_many_units_or_more_is_an_error(tiny_models: Path) -> None:
    model = AutoModel.from_pretrained(str(tiny_models / "bert-teacher"))
    scores = [torch.ones(64) for _ in model.encoder.layer]
    with pytest.raises(DistillError, match="ffn_size 64: the layers have 64 feed-forward units"):
        prune_feed_forward(model, 64, scores)


def test_llama_layers_are_refused_with_the_layer_type(tiny_models: Path) -> None:
    model = AutoModel.from_pretrained(str(tiny_models / "llama-teacher"))
    with pytest.raises(DistillError, match=r"BERT-style layers .* LlamaDecoderLayer has none"):
        feed_forward_importance(model, [])


def test_a_pruned_student_trains_saves_and_reloads_at_its_size(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-teacher")
    hp = {**_TWO_LAYERS, "ffn_size": 40, "epochs": 2}
    record = run_job(tiny.job(folder, hyperparameters=hp), device="cpu").provenance
    assert record["hyperparameters"]["ffn_size"] == 40
    student = AutoModel.from_pretrained(str(folder / "out"))
    assert student.config.intermediate_size == 40
    assert student.config.num_hidden_layers == 2
    assert student.encoder.layer[1].intermediate.dense.out_features == 40
    assert record["metrics"]["eval_cosine_mean"] > 0.5


def test_a_trained_student_is_the_base_of_a_second_pruning_job(workdir: Workdir) -> None:
    # the embedder benchmark's --student: distil a 2-layer student, then prune it further and
    # distil again from the same teacher; the gate reads the first student's own licence
    folder = workdir("bert-teacher", "bert-teacher")
    hp = {**_TWO_LAYERS, "epochs": 1}
    run_job(tiny.job(folder, hyperparameters=hp), device="cpu")
    second = {**hp, "student_layers": None, "ffn_size": 24, "layer_map": {2: 4}}
    path = tiny.job(folder, student="out", output_dir="out-pruned", hyperparameters=second)
    record = run_job(path, device="cpu").provenance

    student = AutoModel.from_pretrained(str(folder / "out-pruned"))
    assert student.config.num_hidden_layers == 2
    assert student.config.intermediate_size == 24
    assert record["hyperparameters"]["ffn_size"] == 24
    assert record["student"]["base"] == str(folder / "out")
    assert record["student"]["base_licences"] == ["Apache-2.0"]
    assert (folder / "out-pruned" / "LICENSES" / "Apache-2.0.txt").is_file()


def test_a_gradual_prune_takes_most_units_first_and_reaches_the_size_in_time() -> None:
    rounds = prune_schedule(1536, 576, 4450, 0.4, 8)
    steps, sizes = [s for s, _ in rounds], [n for _, n in rounds]
    assert steps[0] == 0 and steps == sorted(steps) and steps[-1] < 0.4 * 4450
    assert sizes[-1] == 576 and all(a > b for a, b in itertools.pairwise(sizes))
    assert 1536 - sizes[0] > 5 * (sizes[-2] - sizes[-1])  # cubic: the first round takes most
    assert prune_schedule(64, 24, 12, 0.75, 4) == [(0, 41), (2, 29), (4, 25), (6, 24)]


def test_masked_units_give_the_pruned_model_and_cut_makes_it(tiny_models: Path) -> None:
    model = AutoModel.from_pretrained(str(tiny_models / "bert-teacher")).eval()
    pruned = copy.deepcopy(model)
    batches = _batches(tiny.minilm_tokenizer(), ["tell me about cats", "prime numbers, please"])
    importance = feed_forward_importance(model, batches)
    prune_feed_forward(pruned, 40, importance)

    masks = FeedForwardMasks(model, 40)
    assert masks.kept() == 64
    masks.keep(40, importance)
    assert masks.kept() == 40 and model.config.intermediate_size == 64
    expected = pruned(**batches[0]).last_hidden_state
    torch.testing.assert_close(model(**batches[0]).last_hidden_state, expected)
    masks.keep(30, [torch.arange(64.0)] * 4)  # masked units stay masked, whatever their score
    kept = masks.get_buffer("mask0").nonzero().flatten()
    assert len(kept) == 30 and set(kept.tolist()) <= set(importance[0].topk(40).indices.tolist())
    with pytest.raises(DistillError, match="30 feed-forward units are unmasked, not ffn_size 40"):
        masks.cut(model)
    with pytest.raises(DistillError, match="ffn_size 64: the layers have 64"):
        FeedForwardMasks(AutoModel.from_pretrained(str(tiny_models / "bert-teacher")), 64)


def test_a_gradual_prune_resumes_like_an_uninterrupted_run(workdir: Workdir) -> None:
    folder = workdir("bert-teacher", "bert-teacher")
    hp = {
        **_TWO_LAYERS,
        "batch_size": 4,
        "epochs": 2,
        "ffn_size": 24,
        "prune_until": 0.75,
        "prune_rounds": 4,
        "checkpoint_every": 2,
        "crop_fraction": 0.5,
    }
    job = tiny.job(folder, hyperparameters=hp)
    with pytest.raises(JobInterrupted, match="stopped after 3 of 12 steps"):
        run_job(job, device="cpu", stop_after=3)  # between the second and third rounds
    record = run_job(job, device="cpu", resume=True).provenance
    assert record["training"]["resumed_from"] == 3
    assert record["hyperparameters"]["prune_until"] == 0.75

    lines = (folder / "out/run/metrics.jsonl").read_text().splitlines()
    units = [json.loads(line)["ffn_units"] for line in lines]
    assert units == [41, 41, 29, 29, 25, 25, 24, 24, 24, 24, 24, 24]
    student = AutoModel.from_pretrained(str(folder / "out"))
    assert student.config.intermediate_size == 24
    assert student.encoder.layer[1].output.dense.in_features == 24

    run_job(tiny.job(folder, hyperparameters=hp, output_dir="straight"), device="cpu")
    tiny.assert_same_weights(folder / "out", folder / "straight")


def test_a_gradual_prune_needs_a_size() -> None:
    with pytest.raises(ValidationError, match="prune_until needs ffn_size"):
        HiddenStateConfig(prune_until=0.5)
