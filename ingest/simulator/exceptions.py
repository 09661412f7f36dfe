"""Errors raised by the traffic simulator.

DistillguardError
└── SimulatorError              any simulator failure
    ├── ConfigError             a config file or option is invalid (unknown key, bad value)
    └── CorpusError             a ``--corpus`` folder is missing, empty or holds a malformed file
"""

from __future__ import annotations

from distillguard.errors import DistillguardError


class SimulatorError(DistillguardError):
    """A simulator failure with a message for the person running it."""

    exit_code = 2


class ConfigError(SimulatorError):
    """The simulation config (file or options) is invalid; the message names the bad value."""


class CorpusError(SimulatorError):
    """The prompt corpus folder cannot be used; the message names the file (and line)."""
