"""Loading teachers, students and tokenizers; the device; the vocabulary check.

Imported only after the licence gate has allowed a job: this module imports torch and
transformers.
"""

from __future__ import annotations

import functools
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
    BertModel,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from distill.exceptions import DeviceError, DistillError, ModelFolderError, VocabularyMismatch
from distillguard.encoders import QKV, as_pruned_bert, resized

os.environ.setdefault("HF_HUB_OFFLINE", "1")
hf_logging.disable_progress_bar()


def resolve_device(requested: str) -> torch.device:
    """``auto``: CUDA when there is one, else CPU. ``cuda`` without a device is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available (torch sees none)")
    return torch.device(requested)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The dtype the training steps autocast to on ``device`` (None: fp32, no autocast).

    ``auto``: bf16 on CUDA devices that support it, fp16 on older ones, fp32 on CPU. ``bf16`` on a
    CUDA device without it is a :class:`DeviceError` (before any model is loaded).
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError(
                "precision bf16: this CUDA device does not support bfloat16; use auto or fp32"
            )
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return None


def precision_name(dtype: torch.dtype | None) -> str:
    """``bf16``, ``fp16`` or ``fp32``: what an :func:`autocast_dtype` result trains in."""
    return "fp32" if dtype is None else {torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def autocast(device: torch.device, precision: str = "auto") -> torch.autocast:
    """Autocast for one training step, as :func:`autocast_dtype` decides it."""
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


_WEIGHTS = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_model_source(path: Path, role: str) -> None:
    """Refuse a teacher or student that cannot load, naming the role and the file, before a job
    loads anything: a config that is not JSON or names no architecture transformers knows, JSON
    tokenizer files that do not parse, no weights, or a safetensors file whose header is unreadable
    (only headers are read). ``path`` is a model folder or, for a student, a config file.
    """
    from safetensors import safe_open
    from transformers import AutoConfig

    from distillguard.encoders import register

    if path.is_file():
        _json_object(path, role)
        return
    if not (path / "config.json").is_file():
        raise ModelFolderError(f"{role} {path}: no config.json (not a Hugging Face model folder)")
    register()  # a distillguard pruned BERT names its own model_type
    try:
        AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise ModelFolderError(f"{role} {path}/config.json: {exc}") from exc
    for json_file in sorted(path.glob("*.json")):  # modules.json is a list: any JSON will do
        _read_json(json_file, role)
    if not any((path / name).is_file() for name in _WEIGHTS):
        raise ModelFolderError(f"{role} {path}: no weights ({' or '.join(_WEIGHTS[::2])})")
    for weights in sorted(path.glob("*.safetensors")):
        try:
            with safe_open(str(weights), framework="pt"):
                pass
        except Exception as exc:  # safetensors raises its own SafetensorError and OSError
            message = f"{role} {weights}: unreadable safetensors file ({exc})"
            raise ModelFolderError(message) from exc


def _read_json(path: Path, role: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"{role} {path}: not readable JSON ({exc})") from exc


def _json_object(path: Path, role: str) -> dict[str, Any]:
    body = _read_json(path, role)
    if not isinstance(body, dict):
        raise ModelFolderError(f"{role} {path}: expected a JSON object")
    return body


def student_config(path: Path) -> Any:
    """A transformers config from a config file (a student trained from scratch)."""
    body = _json_object(path, "student")
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


Measure = Callable[[Tensor, Tensor], Tensor]


@torch.inference_mode()
def _unit_importance(
    model: nn.Module,
    batches: Iterable[dict[str, Tensor]],
    probes: list[tuple[nn.Module, Measure]],
) -> list[Tensor]:
    """Per ``(module, measure)`` (one per layer), ``measure(input, output)`` of the module
    (batch x tokens x units) averaged over the real tokens of ``batches``."""
    sums: list[Tensor | None] = [None] * len(probes)
    mask: list[Tensor] = []

    def hook(index: int, measure: Measure) -> Callable[[nn.Module, Any, Tensor], None]:
        def add(_module: nn.Module, inputs: Any, output: Tensor) -> None:
            scores = measure(inputs[0], output) * mask[0].unsqueeze(-1)
            total = scores.sum((0, 1)).float().cpu()
            current = sums[index]
            sums[index] = total if current is None else current + total

        return add

    handles = [
        module.register_forward_hook(hook(i, measure)) for i, (module, measure) in enumerate(probes)
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
    if any(s is None for s in sums):
        raise DistillError("no training texts to measure the importance of units on")
    return [s / max(tokens, 1) for s in sums if s is not None]


def feed_forward_importance(model: nn.Module, batches: Iterable[dict[str, Tensor]]) -> list[Tensor]:
    """Per layer, each feed-forward unit's mean absolute activation over real tokens times the
    norm of its output weights: what removing the unit would take from the layer's output."""
    blocks = [_feed_forward(layer) for layer in _layer_list(model)]
    means = _unit_importance(
        model, batches, [(block, lambda _x, out: out.abs()) for block, _, _ in blocks]
    )
    downs = [down.weight.detach().float().cpu() for _, _, down in blocks]
    return [m * down.norm(dim=0) for m, down in zip(means, downs, strict=True)]


def _attention(layer: nn.Module) -> tuple[Any, nn.Linear]:
    """A BERT layer's self-attention (query, key, value, head count and size) and its output
    projection."""
    attention = getattr(layer, "attention", None)
    heads = getattr(attention, "self", None)
    out = getattr(getattr(attention, "output", None), "dense", None)
    if (
        heads is None
        or not isinstance(out, nn.Linear)
        or not all(isinstance(getattr(heads, n, None), nn.Linear) for n in QKV)
        or not isinstance(getattr(heads, "attention_head_size", None), int)
    ):
        raise DistillError(
            f"attention_heads: pruning heads needs BERT layers (attention.self.query/key/value, "
            f"attention.output.dense); {type(layer).__name__} has none"
        )
    return heads, out


def _head_contribution(weight: Tensor, head_size: int, context: Tensor, _out: Tensor) -> Tensor:
    """Per token, the norm of what each head adds through the output projection ``weight``
    (hidden x heads * head size) to the attention output."""
    per_head = context.unflatten(-1, (-1, head_size))
    weights = weight.unflatten(-1, (-1, head_size))
    return torch.einsum("bthd,ohd->btho", per_head, weights).norm(dim=-1)


def attention_importance(model: nn.Module, batches: Iterable[dict[str, Tensor]]) -> list[Tensor]:
    """Per layer, each attention head's mean contribution to the layer's attention output: the
    norm of what the head adds through the output projection, over real tokens."""
    probes: list[tuple[nn.Module, Measure]] = []
    for layer in _layer_list(model):
        heads, out = _attention(layer)
        size = int(heads.attention_head_size)
        probes.append((out, functools.partial(_head_contribution, out.weight, size)))
    return _unit_importance(model, batches, probes)


def prune_attention_heads(model: nn.Module, size: int, importance: list[Tensor]) -> nn.Module:
    """Keep the ``size`` most important attention heads of every layer of a BERT encoder. Stock
    BERT has one head count for all layers and ties it to the head size, so the result is a
    :class:`~distillguard.encoders.PrunedBertModel` (same weights), which saves and loads."""
    if not isinstance(model, BertModel):
        raise DistillError(
            f"attention_heads: pruning heads needs a BERT encoder; the student is "
            f"{type(model).__name__}"
        )
    for layer, scores in zip(_layer_list(model), importance, strict=True):
        heads, out = _attention(layer)
        if size >= int(heads.num_attention_heads):
            raise DistillError(
                f"attention_heads {size}: the layers have {heads.num_attention_heads} heads; "
                f"pruning needs fewer"
            )
        width = int(heads.attention_head_size)
        kept = torch.topk(scores, size).indices.sort().values
        rows = (kept.unsqueeze(1) * width + torch.arange(width)).flatten().to(out.weight.device)
        for name in QKV:
            setattr(heads, name, _slice_linear(getattr(heads, name), rows=rows))
        heads.num_attention_heads, heads.all_head_size = size, size * width
        layer.attention.output.dense = _slice_linear(out, columns=rows)  # type: ignore[union-attr]
    return as_pruned_bert(model)


def _slice_linear(
    linear: nn.Linear, *, rows: Tensor | None = None, columns: Tensor | None = None
) -> nn.Linear:
    """``linear`` keeping only these output ``rows`` or input ``columns`` of its weight."""
    weight = linear.weight.detach()
    weight = weight[rows] if rows is not None else weight
    weight = weight[:, columns] if columns is not None else weight
    new = resized(linear, out=weight.shape[0], into=weight.shape[1])
    with torch.no_grad():
        new.weight.copy_(weight)
        if linear.bias is not None:
            bias = linear.bias.detach()
            new.bias.copy_(bias[rows] if rows is not None else bias)
    return new


def prune_feed_forward(model: nn.Module, size: int, importance: list[Tensor]) -> None:
    """Keep the ``size`` most important feed-forward units of every layer (BERT-style)."""
    for layer, scores in zip(_layer_list(model), importance, strict=True):
        _, up, down = _feed_forward(layer)
        if size >= up.out_features:
            raise _too_few_units(size, up.out_features)
        keep = torch.topk(scores, size).indices.sort().values.to(up.weight.device)
        layer.intermediate.dense = _slice_linear(up, rows=keep)  # type: ignore[union-attr]
        layer.output.dense = _slice_linear(down, columns=keep)  # type: ignore[union-attr]
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
