"""The ring scorer: a candidate ring's signals combined into one score in [0, 1].

Input ``X``: an (rings x ``SIGNALS``) array, each signal in [0, 1] (see
:func:`detectors.sql.ring_signals_sql` and :func:`densest_window_share`). The score is the weighted
mean of the signals with the policy's weights, so each signal's contribution is its weight times its
value and the evidence can show them. ``predict`` flags a ring whose score reaches the threshold and
that passes two gates: its members spread their questions (``coverage`` at least ``min_coverage``;
members repeating each other's questions are a class or a shared benchmark, not a ring harvesting a
problem bank), and they are tied by operations, not only by content (``operational``, the share of
members with a payment, network, user-agent, sign-up or timing link to another member, at least
``min_operational``; accounts that only share a public prompt template are independent users of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

SIGNALS = ("reasoning", "templates", "coverage", "signup_wave", "clusters", "operational")


class RingScorer(BaseEstimator):
    """Weighted mean of ring signals, with a coverage gate and an operational-link gate."""

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        threshold: float = 0.55,
        min_coverage: float = 0.6,
        min_operational: float = 0.5,
    ) -> None:
        self.weights = weights
        self.threshold = threshold
        self.min_coverage = min_coverage
        self.min_operational = min_operational

    def fit(self, X: Any, y: object = None) -> RingScorer:
        """Validate the weights against ``SIGNALS`` and normalise them to sum to 1."""
        weights = dict(self.weights) if self.weights is not None else dict.fromkeys(SIGNALS, 1.0)
        unknown = sorted(set(weights) - set(SIGNALS))
        if unknown:
            raise ValueError(f"unknown ring signals in weights: {unknown}; known: {SIGNALS}")
        vector = np.array([float(weights.get(s, 0.0)) for s in SIGNALS])
        if (vector < 0).any() or vector.sum() <= 0:
            raise ValueError("ring weights must be non-negative with a positive sum")
        self.weights_ = vector / vector.sum()
        self.n_features_in_ = len(SIGNALS)
        return self

    def contributions(self, X: Any) -> np.ndarray:
        """Each signal's share of the score (rows sum to the score)."""
        data = np.clip(np.nan_to_num(np.asarray(X, dtype=np.float64)), 0.0, 1.0)
        if data.ndim != 2 or data.shape[1] != len(SIGNALS):
            raise ValueError(f"X must have shape (n, {len(SIGNALS)}), got {data.shape}")
        return np.asarray(data * self.weights_)

    def score_samples(self, X: Any) -> np.ndarray:
        return np.asarray(self.contributions(X).sum(axis=1))

    def predict(self, X: Any) -> np.ndarray:
        return ((self.score_samples(X) >= self.threshold) & self.gates(X)).astype(np.int64)

    def gates(self, X: Any) -> np.ndarray:
        """True where a ring passes both gates (coverage and operational links)."""
        data = np.nan_to_num(np.asarray(X, dtype=np.float64)).reshape(-1, len(SIGNALS))
        coverage = data[:, SIGNALS.index("coverage")]
        operational = data[:, SIGNALS.index("operational")]
        return np.asarray((coverage >= self.min_coverage) & (operational >= self.min_operational))


def densest_window_share(created_epochs: np.ndarray, window_seconds: float) -> float:
    """Share of accounts created within the busiest ``window_seconds`` (a sign-up wave)."""
    times = np.sort(np.asarray(created_epochs, dtype=np.float64)[~np.isnan(created_epochs)])
    if len(times) == 0:
        return 0.0
    ends = np.searchsorted(times, times + window_seconds, side="right")
    return float((ends - np.arange(len(times))).max() / len(times))
