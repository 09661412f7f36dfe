"""Reasoning-trace distillation settings: step-by-step teacher solutions, checked when possible."""

from __future__ import annotations

from pydantic import Field

from distill.output_config import OutputConfig


class ReasoningTraceConfig(OutputConfig):
    """Fine-tune on the teacher's traces, keeping only those whose final answer checks out."""

    prompt_template: str = Field(
        "Question: {prompt}\nLet's think step by step, then end with 'The answer is N'.\n",
        description="asks the teacher for a worked solution; has {prompt}",
    )
    max_new_tokens: int = Field(256, ge=1, description="longest trace the teacher generates")
    keep_unchecked: bool = Field(
        True, description="keep traces of prompts that have no reference answer to check"
    )
    tolerance: float = Field(1e-6, ge=0, description="numeric answers within this are equal")
