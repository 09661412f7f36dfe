"""Errors raised by the gateway, its state store, its spool and its commands.

DistillguardError
└── GuardError                  any gateway failure with a message for the operator
    ├── StateError              the published state (file or Redis) cannot be read or written
    │   ├── UnknownKey          no key with that id
    │   └── UnknownAccountState a state that is not active|throttled|restricted|suspended
    ├── SpoolUnavailable        the call log cannot be written: fail closed (503)
    └── ConfigError             a setting or option that cannot work
"""

from __future__ import annotations

from distillguard.errors import DistillguardError


class GuardError(DistillguardError):
    """A gateway failure with a message for the operator."""


class StateError(GuardError):
    """The published state cannot be read or written."""


class UnknownKey(StateError):
    """No key with the given id exists."""


class UnknownAccountState(StateError):
    """An account state outside ``active|throttled|restricted|suspended``."""

    exit_code = 2


class SpoolUnavailable(GuardError):
    """The call log cannot be written; the gateway refuses traffic it cannot log."""


class ConfigError(GuardError):
    """A setting or option that cannot work."""

    exit_code = 2
