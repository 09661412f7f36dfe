"""Every detector, by name. A literal: adding a detector means adding a line here (and the contract
test in ``tests/detectors/test_contract.py`` then checks it)."""

from __future__ import annotations

from detectors.behaviour import BehaviourDetector
from detectors.prada import PradaDetector
from detectors.rings import RingScorer

DETECTORS = {
    "prada": PradaDetector,
    "behaviour": BehaviourDetector,
    "ring": RingScorer,
}
