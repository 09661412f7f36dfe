"""Errors raised by distillation jobs.

DistillguardError
└── DistillError                a distillation job cannot run
    └── JobSpecError            the job spec is invalid; names the file, the line and the field
"""

from __future__ import annotations

from distillguard.errors import DistillguardError


class DistillError(DistillguardError):
    """A distillation job failure with a message for the operator."""


class JobSpecError(DistillError):
    """The job spec is missing, not YAML, or fails validation."""
