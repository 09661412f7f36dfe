"""Errors raised by distillation jobs.

DistillguardError
└── DistillError                a distillation job cannot run
    ├── JobSpecError            the job spec is invalid; names the file, the line and the field
    ├── GateDenied              the licence gate denied the job (exit 2); nothing was loaded
    ├── ObligationUnmet         an obligation the gate attached cannot be fulfilled (exit 3)
    ├── DataError               a data file is missing, unreadable or yields no examples
    ├── VocabularyMismatch      teacher and student tokenizers differ where the method needs one
    ├── CheckpointError         checkpoints missing, foreign or left by an earlier run
    ├── DeviceError             the requested device is not available
    ├── ModelFolderError        a teacher or student folder cannot be loaded; names file and role
    └── JobInterrupted          training stopped early with a checkpoint written (exit 130)
"""

from __future__ import annotations

from distillguard.errors import DistillguardError


class DistillError(DistillguardError):
    """A distillation job failure with a message for the operator."""


class JobSpecError(DistillError):
    """The job spec is missing, not YAML, or fails validation."""


class GateDenied(DistillError):
    """The licence gate's decision is ``deny``; the message lists the refusals."""

    exit_code = 2


class ObligationUnmet(DistillError):
    """An obligation of the gate's decision is not met and the job cannot meet it."""

    exit_code = 3


class DataError(DistillError):
    """A data entry cannot be read or gives no usable examples."""


class VocabularyMismatch(DistillError):
    """The teacher's and the student's vocabularies are not the same tokenizer."""


class CheckpointError(DistillError):
    """Resuming is impossible, or the output folder holds another run's checkpoints."""


class DeviceError(DistillError):
    """The requested device cannot be used."""


class ModelFolderError(DistillError):
    """A teacher or student folder (or student config file) is missing a file or holds a bad one."""


class JobInterrupted(DistillError):
    """Training stopped before the end; the last checkpoint lets ``--resume`` continue."""

    exit_code = 130
