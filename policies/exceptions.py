"""Errors raised while loading policy files and resolving licences.

DistillguardError
└── PolicyError                 a policy file or licence question the gate cannot answer
    ├── PolicyFileError         a policy file is missing, is not YAML, or fails its model
    └── LicenceMismatch         a job's declared licence disagrees with the detected one
"""

from __future__ import annotations

from distillguard.errors import DistillguardError


class PolicyError(DistillguardError):
    """A policy problem with a message for the operator."""


class PolicyFileError(PolicyError):
    """A policy file cannot be used; the message names the file, the line and the field."""


class LicenceMismatch(PolicyError):
    """A declared licence and the licence detected from the model's files disagree."""
