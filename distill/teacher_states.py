"""The teacher's token states at the mapped layers for every training text, computed once before
training and memory-mapped from the run's cache folder (hidden-state method, ``cache_teacher``).

Each text's states are those of the text tokenised alone (its real tokens, no padding), stored one
after another: text ``i`` owns rows ``offsets[i]:offsets[i + 1]`` of each layer. They are kept in
float16 where every value fits (half the size of float32; about three significant digits, far
finer than the student's error) and in float32 otherwise. The pooled embeddings (the mean of the
last layer's states) are float32, as the embedding-only cache keeps them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from distill.losses import mean_pool

_FLOAT16_MAX = float(torch.finfo(torch.float16).max)
Tokens = Callable[[list[str]], dict[str, Tensor]]


@dataclass(frozen=True)
class TeacherStates:
    """Token states per mapped teacher layer, the offsets of each text's rows, pooled embeddings."""

    offsets: Tensor  # [texts + 1], int64
    layers: dict[int, Tensor]  # teacher hidden-state index -> [tokens, width]
    pooled: Tensor  # [texts, width], float32

    def batch(self, indices: Sequence[int | None], mask: Tensor, layer: int) -> Tensor:
        """``layer``'s states for the texts ``indices`` laid out as a batch with attention mask
        ``mask`` (float32; zeros where the mask is 0, and in the rows of None: texts changed
        since, for the live teacher to fill)."""
        store = self.layers[layer]
        out = torch.zeros(*mask.shape, store.shape[1])
        keep = mask.bool().cpu()
        for row, i in enumerate(indices):
            if i is None:
                continue
            start, end = int(self.offsets[i]), int(self.offsets[i + 1])
            out[row, keep[row]] = store[start:end].float()
        return out


@torch.inference_mode()
def compute(
    teacher: nn.Module,
    width: int,
    texts: list[str],
    lengths: list[int],
    layers: list[int],
    tokens: Tokens,
    batch_size: int,
) -> TeacherStates:
    """Run ``teacher`` (hidden size ``width``) once over ``texts`` (``lengths``: their token
    counts as ``tokens`` tokenises them), in batches of similar length, keeping ``layers``'
    states and the pooled embeddings."""
    offsets = torch.zeros(len(texts) + 1, dtype=torch.int64)
    offsets[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0)
    stores = {t: torch.empty(int(offsets[-1]), width, dtype=torch.float16) for t in layers}
    pooled = torch.empty(len(texts), width)
    order = sorted(range(len(texts)), key=lambda i: lengths[i])
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = tokens([texts[i] for i in chunk])
        mask = batch["attention_mask"]
        out = teacher(**batch, output_hidden_states=True)
        pooled[chunk] = mean_pool(out.last_hidden_state, mask).float().cpu()
        keep = mask.bool().cpu()
        for t in layers:
            states = out.hidden_states[t].float().cpu()
            if stores[t].dtype == torch.float16 and float(states.abs().max()) > _FLOAT16_MAX:
                stores[t] = stores[t].float()  # this layer does not fit float16: keep float32
            for row, i in enumerate(chunk):
                stores[t][int(offsets[i]) : int(offsets[i + 1])] = states[row, keep[row]]
    return TeacherStates(offsets, stores, pooled)


def load_or_compute(path: Path, make: Callable[[], TeacherStates]) -> TeacherStates:
    """The states saved at ``path`` (memory-mapped), or ``make()``'s, saved there first (written
    to a temporary file and renamed, so an interrupted save leaves no partial cache)."""
    if not path.exists():
        states = make()
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        body = {"offsets": states.offsets, "pooled": states.pooled}
        torch.save(body | {f"layer_{t}": s for t, s in states.layers.items()}, partial)
        os.replace(partial, path)
    saved = torch.load(path, mmap=True, weights_only=True)
    layers = {int(k.removeprefix("layer_")): v for k, v in saved.items() if k.startswith("layer_")}
    return TeacherStates(saved["offsets"], layers, saved["pooled"])
