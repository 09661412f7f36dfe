"""Reasoning-trace distillation: step-by-step teacher solutions, kept only when they check out."""

from __future__ import annotations

from distill.answers import checks_out
from distill.data import Example
from distill.output_trainer import OutputTrainer
from distill.reasoning_trace_config import ReasoningTraceConfig
from distill.trainer import JobContext


class ReasoningTraceTrainer(OutputTrainer):
    """Like output distillation, but a trace whose final number misses the reference is dropped."""

    config: ReasoningTraceConfig

    def __init__(self, ctx: JobContext, config: ReasoningTraceConfig) -> None:
        super().__init__(ctx, config)
        self._counts: dict[str, int] = {"kept": 0, "rejected": 0, "unchecked": 0}

    def keep(self, example: Example, response: str) -> bool:
        verdict = checks_out(response, example.reference, self.config.tolerance)
        if verdict is None:
            self._counts["unchecked"] += 1
            return self.config.keep_unchecked
        self._counts["kept" if verdict else "rejected"] += 1
        return verdict

    def report_counts(self, split: str, kept: int, total: int) -> None:
        for name, count in self._counts.items():
            self.ctx.report[f"{split}_traces_{name}"] = count
        self.ctx.report[f"{split}_traces_used"] = kept
        self._counts = dict.fromkeys(self._counts, 0)
