"""Every detector in the registry keeps the scikit-learn contract (STYLE.md).

``__init__`` only stores parameters; ``fit`` returns the detector and leaves learned state in
attributes ending in ``_``; ``score_samples`` gives one finite score in [0, 1] per row, higher =
more suspicious; ``predict`` gives 0/1 labels consistent with the scores; ``clone`` works.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.base import clone

from detectors.prada import vectorize_prompts
from detectors.registry import DETECTORS
from detectors.rings import SIGNALS


def _prada_example(rng: np.random.Generator) -> tuple[list[Any], int, int]:
    """A benign-looking account (diverse prompts) and a template sweeper (one wrapper)."""
    words = [f"w{i}" for i in range(300)]
    diverse = [" ".join(rng.choice(words, size=int(rng.integers(3, 30)))) for _ in range(60)]
    sweeper = [f"Solve step by step and box the answer: problem {i} {words[i]}" for i in range(60)]
    X = [vectorize_prompts(diverse), vectorize_prompts(sweeper), vectorize_prompts(diverse[:3])]
    return X, 1, 2  # the suspicious row, and a row with too few calls to test


def _behaviour_example(rng: np.random.Generator) -> tuple[Any, int, int]:
    X = rng.normal(1.0, 0.1, size=(50, 7)).clip(0)
    X[7] = [400, 24, 1.0, 30, 1.0, 1.0, 1.0]  # busy, round the clock, regular, templated
    X[8] = np.nan
    return X, 7, 8


def _ring_example(rng: np.random.Generator) -> tuple[Any, int, int]:
    X = rng.uniform(0.0, 0.3, size=(20, len(SIGNALS)))
    X[3] = 0.95
    X[4] = 0.9
    X[4, SIGNALS.index("coverage")] = 0.05  # a class repeating its homework: gated
    return X, 3, 4


EXAMPLES: dict[str, Callable[[np.random.Generator], tuple[Any, int, int]]] = {
    "prada": _prada_example,
    "behaviour": _behaviour_example,
    "ring": _ring_example,
}


def test_every_detector_has_an_example() -> None:
    assert set(EXAMPLES) == set(DETECTORS)


@pytest.mark.parametrize("name", sorted(DETECTORS))
def test_detector_contract(name: str) -> None:
    cls = DETECTORS[name]
    assert cls.__doc__ and inspect.getmodule(cls).__doc__, f"{name} needs documentation"
    detector = cls()
    params = detector.get_params()
    assert not [a for a in vars(detector) if a.endswith("_")], "__init__ must not learn"
    assert set(vars(detector)) == set(params), "__init__ only stores its parameters"

    X, suspicious, low = EXAMPLES[name](np.random.default_rng(0))
    assert detector.fit(X) is detector
    assert [a for a in vars(detector) if a.endswith("_")], "fit leaves learned state in x_"
    scores = detector.score_samples(X)
    assert scores.shape == (len(X),)
    assert np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()
    assert scores[suspicious] == scores.max(), "higher = more suspicious"
    labels = detector.predict(X)
    assert set(np.unique(labels)) <= {0, 1}
    assert labels[suspicious] == 1
    assert labels[low] == 0
    assert scores[labels == 1].min() >= scores[(labels == 0) & (np.arange(len(X)) != low)].min()

    again = clone(detector)
    assert again.get_params() == params
    np.testing.assert_allclose(again.fit(X).score_samples(X), scores)
