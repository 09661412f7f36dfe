"""The distillation methods: a literal registry of config class and trainer (imported lazily).

Configs are light and validated before the licence gate runs; trainers import torch and
transformers and are imported only after the gate allowed the job.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distill.config import TrainConfig
from distill.hidden_state_config import HiddenStateConfig
from distill.logit_config import LogitConfig
from distill.output_config import OutputConfig
from distill.reasoning_trace_config import ReasoningTraceConfig

if TYPE_CHECKING:
    from distill.trainer import JobContext, Trainer


@dataclass(frozen=True)
class MethodEntry:
    """A method's config class and where its trainer lives (``module:Class``)."""

    config: type[TrainConfig]
    trainer: str
    summary: str

    def build(self, ctx: JobContext, config: TrainConfig) -> Trainer:
        module, _, name = self.trainer.partition(":")
        trainer: Trainer = getattr(importlib.import_module(module), name)(ctx, config)
        return trainer


METHODS: dict[str, MethodEntry] = {
    "logit": MethodEntry(
        LogitConfig,
        "distill.logit_trainer:LogitTrainer",
        "forward KL (T², mixed with CE) / reverse KL / generalised JSD; offline top-k cache",
    ),
    "hidden_state": MethodEntry(
        HiddenStateConfig,
        "distill.hidden_state_trainer:HiddenStateTrainer",
        "mapped hidden states (MSE / cosine, learned projection) and sentence embeddings",
    ),
    "output": MethodEntry(
        OutputConfig,
        "distill.output_trainer:OutputTrainer",
        "the teacher answers the prompts; the student is fine-tuned on the answers",
    ),
    "reasoning_trace": MethodEntry(
        ReasoningTraceConfig,
        "distill.reasoning_trace_trainer:ReasoningTraceTrainer",
        "step-by-step teacher traces, kept only when the final answer checks out",
    ),
}
