"""The detection policy: the thresholds and weights every detector reads (``detection.yaml``).

Nothing in ``detectors/`` hard-codes a threshold or a weight; it reads them from this model, and
each run records the file's hash so a flag can be traced to the exact policy that raised it.
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from policies.loader import (
    LoadedPolicy,
    PolicyModel,
    load_policy,
    re2_error,
    shipped_policy_path,
)

Unit = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
Count = Annotated[int, Field(ge=1)]


class ReasoningPattern(PolicyModel):
    """A regular expression (RE2 syntax, matched against the lower-cased prompt) and its weight."""

    pattern: str = Field(min_length=1)
    weight: Annotated[float, Field(gt=0.0, lt=1.0)]

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        error = re2_error(value)
        if error is not None:
            raise ValueError(f"not a valid regular expression for DuckDB (RE2): {error}")
        return value

    @property
    def log_miss(self) -> float:
        """``ln(1 - weight)``: the score combines patterns as ``1 - prod(1 - weight)``."""
        return math.log1p(-self.weight)


class TemplatePolicy(PolicyModel):
    """When a recurring segment counts as template text rather than the variable part."""

    min_prompts: Count = Field(description="distinct prompts a segment must appear in")
    min_prompts_per_account: Positive = Field(
        description="distinct prompts per account using the segment: a template is reused by its "
        "accounts with different content; a question many people ask once is not"
    )
    min_segment_chars: Count = Field(description="shorter segments are ignored")
    question_min_chars: Count = Field(description="shortest segment that identifies a question")


class FeaturePolicy(PolicyModel):
    reasoning_patterns: list[ReasoningPattern] = Field(min_length=1)
    reasoning_threshold: Unit = Field(description="a call is reasoning-eliciting at this score")
    template: TemplatePolicy


class EmbeddingPolicy(PolicyModel):
    budget: Annotated[int, Field(ge=0)] = Field(description="new prompts embedded per run")
    per_account_sample: Annotated[int, Field(ge=0)]
    batch_size: Count
    max_seq_length: Count
    cluster_similarity: Unit = Field(description="cosine similarity to join a cluster's leader")


class BehaviourPolicy(PolicyModel):
    heavy_calls_per_day: Count
    threshold: Unit
    suspicious_cluster: Unit = Field(description="cluster suspicion that makes a call suspicious")


class PradaPolicy(PolicyModel):
    min_calls: Annotated[int, Field(ge=4)]
    max_calls: Annotated[int, Field(ge=4)]
    threshold: Unit = Field(description="Shapiro-Wilk W below this flags the account")

    @model_validator(mode="after")
    def _ordered(self) -> PradaPolicy:
        if self.max_calls < self.min_calls:
            raise ValueError(f"max_calls ({self.max_calls}) is below min_calls ({self.min_calls})")
        return self


class EdgeWeights(PolicyModel):
    """How much one shared thing of each kind adds to an edge, before rarity scaling."""

    payment: Unit
    signup_net: Unit
    client_net: Unit
    user_agent: Unit
    signup_wave: Unit
    template: Unit
    cluster: Unit
    synchronised: Unit


class WavePolicy(PolicyModel):
    window_minutes: Count
    min_accounts: Count
    min_ratio: Positive = Field(description="sign-ups in the window over the typical window")


class GraphPolicy(PolicyModel):
    max_group_accounts: Annotated[int, Field(ge=2)]
    neighbours: Count = Field(description="links per account inside one shared group")
    min_edge_weight: Unit
    resolution: Positive
    weights: EdgeWeights
    signup_wave: WavePolicy
    sync_bucket_minutes: Count


class RingWeights(PolicyModel):
    reasoning: Unit
    templates: Unit
    coverage: Unit
    signup_wave: Unit
    clusters: Unit
    operational: Unit

    @model_validator(mode="after")
    def _not_all_zero(self) -> RingWeights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one ring weight must be positive")
        return self


class RingPolicy(PolicyModel):
    min_size: Annotated[int, Field(ge=2)]
    weights: RingWeights
    min_coverage: Unit = Field(
        description="members who repeat each other's questions (a class, a shared benchmark) are "
        "not a ring harvesting a problem bank"
    )
    min_operational: Unit = Field(
        description="share of members with a payment, network, user-agent, sign-up or timing link "
        "to another member: accounts that only share a public template are not one operator"
    )
    min_operational_link: Unit = Field(
        description="edge weight from payment, network, user-agent, sign-up or timing links that "
        "ties two members by operations (a common user agent alone is too weak)"
    )
    threshold: Unit
    wave_window_hours: Positive
    characteristic_share: Unit = Field(
        description="a template or cluster is ring-made when this share of its accounts are "
        "members of candidate rings (the unlinked population does not use it)"
    )
    popular_question_share: Unit = Field(
        description="a question asked by this share of a ring's members (at least 3) is popular"
    )


class AccountPolicy(PolicyModel):
    min_fit: Unit = Field(
        description="share of an account's calls that must look like its ring's (reasoning, the "
        "ring's own templates or clusters) to be flagged; also the share at which a member counts "
        "as taking part in the ring's content signals"
    )
    min_fit_content_only: Unit = Field(
        description="for a member linked to its ring by content alone (templates or clusters, no "
        "payment, network, sign-up or timing link): share of its calls that must elicit reasoning "
        "or use the ring's own templates (topic similarity alone does not count)"
    )
    flag_dormant_members: bool = Field(
        description="flag members of a flagged ring that have made no calls yet"
    )


class DetectionPolicy(PolicyModel):
    version: int = Field(ge=1, le=1)
    features: FeaturePolicy
    embeddings: EmbeddingPolicy
    behaviour: BehaviourPolicy
    prada: PradaPolicy
    graph: GraphPolicy
    rings: RingPolicy
    accounts: AccountPolicy


DEFAULT_POLICY_NAME = "detection.yaml"


def load_detection_policy(path: Path | None = None) -> LoadedPolicy[DetectionPolicy]:
    """Load and validate ``path`` (default: the shipped ``policies/detection.yaml``)."""
    if path is None:
        return _shipped()
    return load_policy(path, DetectionPolicy)


@lru_cache(maxsize=1)
def _shipped() -> LoadedPolicy[DetectionPolicy]:
    return load_policy(shipped_policy_path(DEFAULT_POLICY_NAME), DetectionPolicy)
