"""Enforcement rules: which action a risk score leads to, used by the control plane.

Bands are half-open intervals ``[min_score, next band's min_score)`` over ``[0, 1]``; the first
starts at 0 and actions never de-escalate as the score rises.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from policies.loader import LoadedPolicy, PolicyModel, load_policy, shipped_policy_path

Action = Literal["none", "throttle", "restrict", "suspend"]
_SEVERITY: dict[str, int] = {"none": 0, "throttle": 1, "restrict": 2, "suspend": 3}


class Band(PolicyModel):
    """Scores from ``min_score`` up to the next band lead to ``action``."""

    min_score: float = Field(ge=0.0, le=1.0)
    action: Action
    requires_review: bool = Field(
        default=False, description="a person must confirm before the action takes effect"
    )


class EnforcementPolicy(PolicyModel):
    """Risk score bands, lowest first."""

    bands: list[Band] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered_and_escalating(self) -> EnforcementPolicy:
        if self.bands[0].min_score != 0.0:
            raise ValueError("the first band must start at min_score 0")
        for low, high in zip(self.bands, self.bands[1:], strict=False):
            if high.min_score <= low.min_score:
                raise ValueError(f"bands must rise: {high.min_score} follows {low.min_score}")
            if _SEVERITY[high.action] < _SEVERITY[low.action]:
                raise ValueError(f"actions must not de-escalate: {high.action} after {low.action}")
        return self

    def band_for(self, score: float) -> Band:
        """The band a risk score in ``[0, 1]`` falls in."""
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"risk score {score} is outside [0, 1]")
        return [b for b in self.bands if b.min_score <= score][-1]


def load_enforcement() -> LoadedPolicy[EnforcementPolicy]:
    """The shipped enforcement rules."""
    return load_policy(shipped_policy_path("enforcement.yaml"), EnforcementPolicy)
