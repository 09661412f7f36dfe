"""A traffic simulator: benign populations, hard negatives and extraction rings, with labels.

    from ingest.simulator import SimulationConfig, simulate, write
    result = simulate(SimulationConfig(seed=7), corpus=Path("../shared/data/prompts"))
    write(result, Path("sim-out"))

``result.accounts`` and ``result.calls`` follow ``ingest.contract``; ``result.labels`` holds
``account_id, is_fraud, ring_id, role``. Names are imported on first use, so that importing the
CLI (``distillguard --help``) does not load numpy and pyarrow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ingest.simulator.config import SimulationConfig, load_config, parse_config
    from ingest.simulator.corpus import Corpus, load_corpus
    from ingest.simulator.engine import (
        LABELS_ARROW_SCHEMA,
        SimulationResult,
        simulate,
        write,
    )

_HOME = {
    "SimulationConfig": "config",
    "load_config": "config",
    "parse_config": "config",
    "Corpus": "corpus",
    "load_corpus": "corpus",
    "LABELS_ARROW_SCHEMA": "engine",
    "SimulationResult": "engine",
    "simulate": "engine",
    "write": "engine",
}

__all__ = [
    "LABELS_ARROW_SCHEMA",
    "Corpus",
    "SimulationConfig",
    "SimulationResult",
    "load_config",
    "load_corpus",
    "parse_config",
    "simulate",
    "write",
]


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"ingest.simulator.{_HOME[name]}"), name)
    raise AttributeError(f"module 'ingest.simulator' has no attribute {name!r}")
