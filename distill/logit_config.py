"""Logit-level distillation settings: forward KL + CE, reverse KL, JSD; offline top-k."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from distill.config import TrainConfig


class LogitConfig(TrainConfig):
    """Match the student's next-token distribution to the teacher's."""

    loss: Literal["forward_kl", "reverse_kl", "jsd"] = Field(
        "forward_kl", description="divergence between teacher and student distributions"
    )
    temperature: float = Field(2.0, gt=0, description="softening temperature (losses scale by T²)")
    alpha: float = Field(
        0.5, ge=0, le=1, description="forward_kl only: weight of the KL term; 1 - alpha goes to CE"
    )
    beta: float = Field(
        0.5, ge=0, le=1, description="jsd only: the teacher's weight in the mixture"
    )
    offline: bool = Field(
        False, description="cache the teacher's top-k log-probabilities once, train from the cache"
    )
    top_k: int = Field(20, ge=1, description="offline: log-probabilities kept per position")

    @model_validator(mode="after")
    def _offline_is_forward(self) -> LogitConfig:
        if self.offline and self.loss != "forward_kl":
            raise ValueError(
                f"offline mode trains forward_kl on the cached top-k; loss {self.loss} needs the "
                "teacher's full distribution (set offline: false)"
            )
        return self
