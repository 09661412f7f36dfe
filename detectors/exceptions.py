"""Errors raised by the detectors.

DistillguardError
└── DetectorError               a detection run or report cannot go ahead
    ├── NothingToDetect         the warehouse holds no calls (in the requested window)
    ├── IncrementalMismatch     an incremental run cannot reproduce a full run (policy changed,
    │                           or calls before --since were never processed)
    ├── DeviceUnavailable       --device cuda without CUDA, a precision the device lacks
    ├── ModelUnavailable        the embedding model directory cannot be loaded
    ├── NoDetectionRun          flags or an evaluation were asked for before any run
    └── BadLabels               a labels file is missing, unreadable or lacks required columns
"""

from __future__ import annotations

from distillguard.errors import DistillguardError


class DetectorError(DistillguardError):
    """A detection failure with a message for the operator."""


class NothingToDetect(DetectorError):
    """There are no calls to run over."""


class IncrementalMismatch(DetectorError):
    """An incremental run would not give the same flags as a full run."""


class DeviceUnavailable(DetectorError):
    """The requested compute device, or number format on it, is not available."""


class ModelUnavailable(DetectorError):
    """The sentence-transformers model cannot be loaded from the given directory."""


class NoDetectionRun(DetectorError):
    """No detection run has been recorded in this warehouse."""


class BadLabels(DetectorError):
    """A labels file cannot be used for evaluation."""
