"""Per-account behaviour: the account features and an outlier detector over them.

``BehaviourDetector`` learns each feature's median and spread (MAD) over the population and scores
an account by how far it sits on the suspicious side of each feature (high volume per active day,
round-the-clock activity, machine-regular timing, long answers per prompt token, reasoning
elicitation, templated prompts, distinct prompts): the mean of the per-feature excess, squashed to
[0, 1]. Higher = more unusual in the direction extraction pushes. On its own it also flags benchmark
runners and integrators; the pipeline uses it as evidence, not as a verdict.

Input ``X``: an (accounts x ``FEATURES``) array; NaN means unknown and counts as typical.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

FEATURES = (
    "calls_per_active_day",
    "active_hours",
    "regularity",  # 1 / (1 + interarrival CV)
    "token_ratio",
    "reasoning_rate",
    "templated_share",
    "distinct_prompt_ratio",
)


class BehaviourDetector(BaseEstimator):
    """Robust one-sided z-scores against the population, averaged and squashed to [0, 1]."""

    def __init__(self, threshold: float = 0.9, scale: float = 4.0) -> None:
        self.threshold = threshold
        self.scale = scale

    def fit(self, X: Any, y: object = None) -> BehaviourDetector:
        data = np.asarray(X, dtype=np.float64)
        if data.ndim != 2:
            raise ValueError(f"X must be 2-dimensional, got shape {data.shape}")
        with np.errstate(all="ignore"):
            center = np.nanmedian(data, axis=0) if len(data) else np.zeros(data.shape[1])
            mad = (
                np.nanmedian(np.abs(data - center), axis=0) if len(data) else np.ones(data.shape[1])
            )
        self.center_ = np.nan_to_num(center)
        self.spread_ = np.where(np.nan_to_num(mad) > 1e-9, 1.4826 * np.nan_to_num(mad), 1.0)
        self.n_features_in_ = data.shape[1]
        return self

    def score_samples(self, X: Any) -> np.ndarray:
        data = np.asarray(X, dtype=np.float64)
        if data.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {data.shape[1]} features, the detector {self.n_features_in_}")
        excess = np.clip((data - self.center_) / self.spread_, 0.0, None)
        excess = np.nan_to_num(excess, nan=0.0)
        return np.asarray(1.0 - np.exp(-excess.mean(axis=1) / self.scale))

    def predict(self, X: Any) -> np.ndarray:
        return (self.score_samples(X) >= self.threshold).astype(np.int64)
