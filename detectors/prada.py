"""PRADA (Juuti et al., 2019) adapted to prompts: the per-account baseline detector.

For each account, in time order, the distance of every query to its nearest earlier query is
collected; PRADA's observation is that a benign client's distances look normally distributed and an
extraction client's do not. The Shapiro-Wilk statistic ``W`` of those distances is the test:
``W < threshold`` flags the account. It looks at one account at a time, which is exactly why it is
the baseline: an operation spread over thousands of low-volume accounts passes it.

Input ``X``: a sequence with one entry per account, each a (calls x features) matrix whose rows are
unit vectors in time order (hashed word n-grams: cheap, covers every call). ``score_samples`` gives
``1 - W`` (higher = more suspicious; 0 for an account with fewer than ``min_calls`` calls, which
cannot be tested).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from scipy.stats import shapiro
from sklearn.base import BaseEstimator


def nearest_earlier_distances(matrix: Any) -> np.ndarray:
    """For rows 1..n-1, the Euclidean distance to the nearest earlier row (unit-vector rows)."""
    n = matrix.shape[0]
    if n < 2:
        return np.zeros(0)
    product = matrix @ matrix.T
    gram = product.toarray() if sparse.issparse(product) else np.asarray(product)
    sq = np.clip(2.0 - 2.0 * gram, 0.0, None)
    sq[np.triu_indices(n)] = np.inf
    return np.sqrt(sq[1:].min(axis=1))


class PradaDetector(BaseEstimator):
    """Per-account Shapiro-Wilk test on nearest-earlier-query distances."""

    def __init__(self, threshold: float = 0.9, min_calls: int = 10, max_calls: int = 200) -> None:
        self.threshold = threshold
        self.min_calls = min_calls
        self.max_calls = max_calls

    def fit(self, X: Sequence[Any], y: object = None) -> PradaDetector:
        """Nothing is learned from data: PRADA's threshold is a parameter. Validates it."""
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.min_calls < 4:
            raise ValueError(f"min_calls must be at least 4, got {self.min_calls}")
        self.n_accounts_seen_ = len(X)
        return self

    def statistic(self, matrix: Any) -> float | None:
        """Shapiro-Wilk W of one account's distances, or None with too few calls."""
        rows = matrix[: self.max_calls]
        if rows.shape[0] < self.min_calls:
            return None
        distances = nearest_earlier_distances(rows)
        if np.ptp(distances) <= 1e-12:
            return 0.0  # every query equally far from the last: as far from normal as it gets
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(shapiro(distances).statistic)

    def score_samples(self, X: Sequence[Any]) -> np.ndarray:
        scores = np.zeros(len(X))
        for i, matrix in enumerate(X):
            w = self.statistic(matrix)
            scores[i] = 0.0 if w is None else float(np.clip(1.0 - w, 0.0, 1.0))
        return scores

    def predict(self, X: Sequence[Any]) -> np.ndarray:
        """1 where ``W < threshold`` (the account is flagged), else 0."""
        return self.decide(self.score_samples(X))

    def decide(self, scores: np.ndarray) -> np.ndarray:
        """Labels from scores already computed (an untested account scores 0: never flagged)."""
        return (np.asarray(scores) > 1.0 - self.threshold).astype(np.int64)


def vectorize_prompts(texts: Sequence[str]) -> Any:
    """Hashed word unigram and bigram vectors, L2-normalised (a sparse matrix)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(
        analyzer="word", ngram_range=(1, 2), n_features=2**18, alternate_sign=False, norm="l2"
    )
    return vectorizer.transform(texts)
