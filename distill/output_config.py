"""Output-level distillation settings: the teacher answers the prompts, the student learns them."""

from __future__ import annotations

from pydantic import Field, field_validator

from distill.config import TrainConfig


class OutputConfig(TrainConfig):
    """Sequence-level knowledge distillation (the student is fine-tuned on teacher responses)."""

    max_new_tokens: int = Field(64, ge=1, description="longest response the teacher generates")
    prompt_template: str = Field(
        "{prompt}\n", description="how a prompt is shown to teacher and student; has {prompt}"
    )
    generation_batch_size: int = Field(8, ge=1, description="prompts per teacher generate() call")

    @field_validator("prompt_template")
    @classmethod
    def _has_prompt(cls, value: str) -> str:
        if "{prompt}" not in value:
            raise ValueError(f"prompt_template must contain {{prompt}}, got {value!r}")
        return value

    def render(self, prompt: str) -> str:
        return self.prompt_template.replace("{prompt}", prompt)
