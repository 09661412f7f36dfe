"""``cache_teacher``: the teacher's mapped token states are computed once and steps run the teacher
only on the texts that crops or substitutions changed, with the targets the live teacher gives."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import Tensor, nn

from distill import teacher_states
from distill.job import run_job
from tests.distill import tiny

Workdir = Callable[..., Path]
HP = {
    "layer_map": {2: 4},
    "hidden_loss": "cosine",
    "embedding_loss": "cosine",
    "batch_size": 4,
    "max_steps": 4,
    "eval_fraction": 0.0,
    "learning_rate": 1e-3,
}


class _Stub(nn.Module):
    """A 'teacher' whose states are the token ids times ``scale`` (layer 1 twice layer 0)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, input_ids: Tensor, attention_mask: Tensor, **_: object) -> SimpleNamespace:
        h = input_ids.float().unsqueeze(-1).repeat(1, 1, 3) * self.scale
        return SimpleNamespace(last_hidden_state=h, hidden_states=(h, 2 * h))


def _tokens(texts: list[str]) -> dict[str, Tensor]:
    """Right-padded character codes."""
    longest = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), longest, dtype=torch.long)
    mask = torch.zeros(len(texts), longest, dtype=torch.long)
    for row, text in enumerate(texts):
        ids[row, : len(text)] = torch.tensor([ord(c) for c in text])
        mask[row, : len(text)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def _steps(out: Path) -> list[dict[str, float]]:
    lines = (out / "run" / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_states_are_each_texts_own_rows_in_float16_or_float32_where_they_do_not_fit(
    tmp_path: Path,
) -> None:
    texts = ["abcd", "a", "xyz", "hello"]
    lengths = [len(t) for t in texts]
    states = teacher_states.compute(_Stub(1.0), 3, texts, lengths, [0, 1], _tokens, 2)
    assert states.offsets.tolist() == [0, 4, 5, 8, 13]
    assert {s.dtype for s in states.layers.values()} == {torch.float16}
    batch = _tokens(["xyz", "abcd"])
    live = _Stub(1.0)(**batch).hidden_states[1]
    assert torch.equal(
        states.batch([2, 0], batch["attention_mask"], 1),
        live * batch["attention_mask"].unsqueeze(-1),
    )
    changed = states.batch([None, 0], batch["attention_mask"], 1)  # row 0 is for the teacher
    assert not changed[0].any() and torch.equal(changed[1], live[1])
    assert torch.allclose(states.pooled[3], torch.full((3,), sum(map(ord, "hello")) / 5))

    big = teacher_states.compute(_Stub(1e5), 3, texts, lengths, [0], _tokens, 2)
    assert big.layers[0].dtype == torch.float32  # ord('a') * 1e5 overflows float16
    assert float(big.layers[0][4, 0]) == ord("a") * 1e5

    made: list[int] = []

    def make() -> teacher_states.TeacherStates:
        made.append(1)
        return states

    path = tmp_path / "cache" / "states.pt"
    first = teacher_states.load_or_compute(path, make)
    again = teacher_states.load_or_compute(path, make)
    assert made == [1] and not list(path.parent.glob("*.partial"))
    for loaded in (first, again):
        assert torch.equal(loaded.offsets, states.offsets)
        assert torch.equal(loaded.layers[1], states.layers[1])
        assert torch.equal(loaded.pooled, states.pooled)


@pytest.mark.parametrize("crop_fraction", [0.0, 0.5, 1.0])
def test_cached_states_train_as_the_live_teacher_and_it_runs_only_on_changed_texts(
    workdir: Workdir, crop_fraction: float
) -> None:
    folder = workdir("bert-teacher", "bert-student")
    hp = HP | {"crop_fraction": crop_fraction}
    run_job(tiny.job(folder, hyperparameters=hp, output_dir="live"), device="cpu")
    cached = tiny.job(folder, hyperparameters=hp | {"cache_teacher": True}, output_dir="cached")
    run_job(cached, device="cpu")
    live, steps = _steps(folder / "live"), _steps(folder / "cached")
    assert [s["teacher_texts"] for s in live] == [4, 4, 4, 4]
    ran = [s["teacher_texts"] for s in steps]
    # every tiny prompt has six words or more, so a crop fraction of 1 changes every text
    if crop_fraction == 0.0:
        assert ran == [0, 0, 0, 0]
    elif crop_fraction == 1.0:
        assert ran == [4, 4, 4, 4]
    else:
        assert 0 < sum(ran) < 16
    # the same crops (torch's RNG) and targets to float16 rounding: the same losses, nearly
    for a, b in zip(live, steps, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
    assert len(list((folder / "cached" / "run" / "cache").glob("teacher-states-*.pt"))) == 1


def test_cached_states_without_an_embedding_loss_train_the_layer_map_alone(
    workdir: Workdir,
) -> None:
    folder = workdir("bert-teacher", "bert-student")
    hp = HP | {"embedding_loss": "none", "cache_teacher": True, "crop_fraction": 0.5}
    run_job(tiny.job(folder, hyperparameters=hp), device="cpu")
    for step in _steps(folder / "out"):
        assert "embedding_loss" not in step
        assert step["loss"] == pytest.approx(step["hidden_loss"], abs=1e-6)
