"""Hyperparameters every method shares; each method's config extends :class:`TrainConfig`.

A job's ``hyperparameters`` mapping is validated against its method's config; an unknown key or a
bad value is a :class:`JobSpecError` naming the field and the value.
"""

from __future__ import annotations

from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distill.exceptions import JobSpecError


class TrainConfig(BaseModel):
    """Optimisation, data and checkpoint settings shared by every method."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(1, ge=1, description="passes over the training examples")
    max_steps: int | None = Field(None, ge=1, description="stop after this many steps in total")
    batch_size: int = Field(8, ge=1, description="examples per optimisation step")
    learning_rate: float = Field(5e-5, gt=0, le=1, description="AdamW peak learning rate")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay")
    optimizer: Literal["adamw_torch_fused", "adamw_torch"] = Field(
        "adamw_torch_fused",
        description="AdamW's implementation: adamw_torch_fused updates the parameters in fused "
        "kernels (on a CPU too), adamw_torch is PyTorch's per-parameter loop, slower where a "
        "large embedding matrix is trained; the same update up to float rounding",
    )
    warmup_fraction: float = Field(0.05, ge=0, lt=1, description="linear warm-up share of steps")
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping norm")
    max_length: int = Field(128, ge=4, description="tokens kept per example")
    group_by_length: bool = Field(
        False, description="batch examples of similar length together (less padding, faster)"
    )
    max_examples: int | None = Field(None, ge=1, description="use at most this many examples")
    eval_fraction: float = Field(0.1, ge=0, lt=1, description="share held out for evaluation")
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints")
    seed: int = Field(0, description="seed for initialisation, batching and dropout")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        description="autocast of the training steps: auto is bf16 on CUDA (fp16 where bf16 is "
        "unsupported) and fp32 on CPU; bf16 also on a CPU (it needs native bf16, e.g. "
        "AVX512-BF16 or AMX, to gain anything, and may not: measure); the weights and the "
        "optimiser stay fp32",
    )


C = TypeVar("C", bound=TrainConfig)


def parse_config(kind: type[C], values: dict[str, Any], where: str) -> C:
    """Validate ``values`` as ``kind``; errors name ``hyperparameters.<field>`` and the value."""
    try:
        return kind.model_validate(values)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
            lines.append(f"{where}: field 'hyperparameters.{field}': {err['msg']}{got}")
        raise JobSpecError("\n".join(lines)) from exc
