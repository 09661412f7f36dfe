"""Loading teachers, students and tokenizers; the device; the vocabulary check.

Imported only after the licence gate has allowed a job: this module imports torch and
transformers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from distill.exceptions import DeviceError, DistillError, VocabularyMismatch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
hf_logging.disable_progress_bar()


def resolve_device(requested: str) -> torch.device:
    """``auto``: CUDA when there is one, else CPU. ``cuda`` without a device is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available (torch sees none)")
    return torch.device(requested)


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA devices that support it (fp16 otherwise); disabled on CPU."""
    if device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast("cpu", enabled=False)


def student_config(path: Path) -> Any:
    """A transformers config from a config file (a student trained from scratch)."""
    body = json.loads(path.read_text(encoding="utf-8"))
    model_type = body.pop("model_type", None)
    if not model_type:
        raise DistillError(f"{path}: a student config needs model_type (e.g. llama, bert)")
    return AutoConfig.for_model(model_type, **body)


def tokenizer_dir(student: Path, teacher: Path) -> Path:
    """Where the student's tokenizer comes from: its own folder, else the teacher's."""
    return student if student.is_dir() else teacher


def frozen_causal_lm(directory: Path, device: torch.device) -> PreTrainedModel:
    """A teacher causal LM in eval mode, without gradients, on ``device``."""
    model = AutoModelForCausalLM.from_pretrained(str(directory))
    model.eval().requires_grad_(False)
    nn.Module.to(model, device)
    return model


def load_tokenizer(directory: Path) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(str(directory))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.sep_token
    return tokenizer


def same_tokenizer(
    teacher_tok: PreTrainedTokenizerBase, student_tok: PreTrainedTokenizerBase, method: str
) -> None:
    """Refuse different tokenizers (token ids must mean the same thing), naming both sizes."""
    if teacher_tok.get_vocab() != student_tok.get_vocab():
        raise VocabularyMismatch(
            f"the teacher's tokenizer has {len(teacher_tok)} tokens and the student's "
            f"{len(student_tok)}, with different token ids: {method} distillation needs the same "
            "tokenizer (use method output or reasoning_trace across tokenizers)"
        )


def shared_vocabulary(
    teacher_tok: PreTrainedTokenizerBase,
    student_tok: PreTrainedTokenizerBase,
    teacher_width: int,
    student_width: int,
) -> int:
    """The number of logits teacher and student share.

    The same tokenizer with an embedding matrix padded past it (e.g. to a multiple of 64) is
    handled by truncating both to the tokenizer's length; different tokenizers are an error
    that names both vocabularies.
    """
    same_tokenizer(teacher_tok, student_tok, "logit")
    size = len(teacher_tok)
    if min(teacher_width, student_width) < size:
        raise VocabularyMismatch(
            f"the tokenizer has {size} tokens but the teacher outputs {teacher_width} logits and "
            f"the student {student_width}: a model cannot score every token"
        )
    return size


def keep_layers(model: nn.Module, layers: list[int]) -> None:
    """Keep only ``layers`` of an encoder/decoder stack (student initialised from a teacher)."""
    stack = _layer_list(model)
    if max(layers) >= len(stack):
        raise DistillError(f"student_layers {layers}: the base model has only {len(stack)} layers")
    kept = nn.ModuleList([stack[i] for i in layers])
    _set_layer_list(model, kept)
    model.config.num_hidden_layers = len(layers)  # type: ignore[union-attr]


def _feed_forward(layer: nn.Module) -> tuple[nn.Module, nn.Linear, nn.Linear]:
    """A BERT-style layer's ``intermediate`` block, its input and its output projections."""
    block = getattr(layer, "intermediate", None)
    up = getattr(block, "dense", None)
    down = getattr(getattr(layer, "output", None), "dense", None)
    if (
        block is None
        or not isinstance(up, nn.Linear)
        or not isinstance(down, nn.Linear)
        or up.out_features != down.in_features
    ):
        raise DistillError(
            f"ffn_size: pruning needs BERT-style layers (intermediate.dense, output.dense); "
            f"{type(layer).__name__} has none"
        )
    return block, up, down


@torch.inference_mode()
def feed_forward_importance(model: nn.Module, batches: Iterable[dict[str, Tensor]]) -> list[Tensor]:
    """Per layer, each feed-forward unit's mean absolute activation over real tokens times the
    norm of its output weights: what removing the unit would take from the layer's output."""
    stack = _layer_list(model)
    sums = [torch.zeros(_feed_forward(layer)[1].out_features) for layer in stack]
    mask: list[Tensor] = []

    def hook(index: int) -> Callable[[nn.Module, Any, Tensor], None]:
        def add(_module: nn.Module, _inputs: Any, output: Tensor) -> None:
            sums[index] += (output.abs() * mask[0].unsqueeze(-1)).sum((0, 1)).float().cpu()

        return add

    handles = [
        _feed_forward(layer)[0].register_forward_hook(hook(i)) for i, layer in enumerate(stack)
    ]
    tokens = 0
    try:
        for batch in batches:
            mask[:] = [batch["attention_mask"].to(torch.float32)]
            tokens += int(batch["attention_mask"].sum())
            model(**batch)
    finally:
        for handle in handles:
            handle.remove()
    downs = [_feed_forward(layer)[2].weight.detach().float().cpu() for layer in stack]
    return [s / max(tokens, 1) * down.norm(dim=0) for s, down in zip(sums, downs, strict=True)]


def prune_feed_forward(model: nn.Module, size: int, importance: list[Tensor]) -> None:
    """Keep the ``size`` most important feed-forward units of every layer (BERT-style)."""
    for layer, scores in zip(_layer_list(model), importance, strict=True):
        _, up, down = _feed_forward(layer)
        if size >= up.out_features:
            raise _too_few_units(size, up.out_features)
        keep = torch.topk(scores, size).indices.sort().values
        device, dtype = up.weight.device, up.weight.dtype
        new_up = nn.Linear(
            up.in_features, size, bias=up.bias is not None, device=device, dtype=dtype
        )
        new_down = nn.Linear(
            size, down.out_features, bias=down.bias is not None, device=device, dtype=dtype
        )
        with torch.no_grad():
            new_up.weight.copy_(up.weight[keep])
            new_down.weight.copy_(down.weight[:, keep])
            if up.bias is not None:
                new_up.bias.copy_(up.bias[keep])
            if down.bias is not None:
                new_down.bias.copy_(down.bias)
        layer.intermediate.dense = new_up  # type: ignore[union-attr]
        layer.output.dense = new_down  # type: ignore[union-attr]
    model.config.intermediate_size = size  # type: ignore[union-attr]


def _too_few_units(size: int, units: int) -> DistillError:
    return DistillError(
        f"ffn_size {size}: the layers have {units} feed-forward units; pruning needs fewer"
    )


def prune_schedule(
    units: int, size: int, total: int, until: float, rounds: int
) -> list[tuple[int, int]]:
    """``(step, units kept from that step on)`` of each round of a gradual prune from ``units``
    to ``size`` within the first ``until`` share of ``total`` steps. The sizes follow a cubic
    (Zhu and Gupta, 2017): most units go in the first rounds, while the most steps are left to
    adapt to their loss, and the last rounds take few. The first round is at step 0."""
    return [
        (
            int(r * until * total / rounds),
            units - round((units - size) * (1 - (1 - (r + 1) / rounds) ** 3)),
        )
        for r in range(rounds)
    ]


class FeedForwardMasks(nn.Module):
    """A 0/1 mask over the feed-forward units of each BERT-style layer of ``model``, applied to
    the activations by forward hooks, so training the masked model trains the pruned one. The
    masks and the count of steps taken are buffers: a checkpoint keeps them, and a resumed run
    masks alike. :meth:`cut` prunes the model to the units left and removes the hooks."""

    def __init__(self, model: nn.Module, size: int) -> None:
        super().__init__()
        blocks = [_feed_forward(layer) for layer in _layer_list(model)]
        self.units = blocks[0][1].out_features
        if size >= self.units:
            raise _too_few_units(size, self.units)
        self.size = size
        device = blocks[0][1].weight.device
        self.register_buffer("steps", torch.zeros((), dtype=torch.long, device=device))
        self._handles: list[RemovableHandle] = []
        for i, (block, up, _) in enumerate(blocks):
            self.register_buffer(f"mask{i}", torch.ones(up.out_features, device=device))
            self._handles.append(block.register_forward_hook(self._hook(i)))

    def _mask(self, index: int) -> Tensor:
        return self.get_buffer(f"mask{index}")

    def tick(self) -> int:
        """Count a training step; returns the steps taken before it."""
        steps = self.get_buffer("steps")
        done = int(steps)
        steps += 1
        return done

    def _hook(self, index: int) -> Callable[[nn.Module, Any, Tensor], Tensor]:
        def apply(_module: nn.Module, _inputs: Any, output: Tensor) -> Tensor:
            return output * self._mask(index).to(output.dtype)

        return apply

    def kept(self) -> int:
        """Units each layer keeps now."""
        return int(self._mask(0).sum())

    def keep(self, size: int, importance: list[Tensor]) -> None:
        """Mask all but the ``size`` most important units of each layer still unmasked."""
        for i, scores in enumerate(importance):
            mask = self._mask(i)
            scores = scores.to(mask.device).masked_fill(mask == 0, float("-inf"))
            mask.zero_()
            mask[torch.topk(scores, size).indices] = 1.0

    def cut(self, model: nn.Module) -> None:
        """Prune ``model`` to the unmasked units (the final size) and stop masking."""
        if self.kept() != self.size:
            raise DistillError(
                f"gradual prune: {self.kept()} feed-forward units are unmasked, not ffn_size "
                f"{self.size}; the prune schedule did not finish"
            )
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        masks = [self._mask(i).detach().cpu() for i in range(len(_layer_list(model)))]
        prune_feed_forward(model, self.size, masks)


_STACKS = ("encoder.layer", "model.layers", "transformer.h", "layers", "h")


def _find(model: nn.Module) -> tuple[nn.Module, str]:
    for dotted in _STACKS:
        owner: Any = model
        parts = dotted.split(".")
        for part in parts[:-1]:
            owner = getattr(owner, part, None)
            if owner is None:
                break
        if owner is not None and isinstance(getattr(owner, parts[-1], None), nn.ModuleList):
            return owner, parts[-1]
    raise DistillError(f"cannot find the layer stack of {type(model).__name__}")


def _layer_list(model: nn.Module) -> nn.ModuleList:
    owner, name = _find(model)
    stack: nn.ModuleList = getattr(owner, name)
    return stack


def _set_layer_list(model: nn.Module, layers: nn.ModuleList) -> None:
    owner, name = _find(model)
    setattr(owner, name, layers)


def file_sha256(directory: Path) -> dict[str, str]:
    """sha256 of each weight and config file in a model folder (the teacher's revision)."""
    from ingest.formats import sha256_file

    if directory.is_file():
        return {directory.name: sha256_file(directory)}
    return {
        path.name: sha256_file(path)
        for path in sorted(directory.iterdir())
        if path.is_file() and path.suffix in {".safetensors", ".bin", ".json", ".model", ".txt"}
    }
