"""Errors raised by the warehouse and the importers.

DistillguardError
└── IngestError                 any warehouse or import failure
    ├── WarehouseLocked         another process holds the warehouse read-write
    ├── WarehouseTooNew         the file was written by a newer distillguard
    ├── MigrationError          a migration failed; the warehouse is left as it was
    └── UnreadableInput         a file is not what it claims (truncated, junk, wrong columns);
                                refused whole, nothing loaded; exit code 2
"""

from __future__ import annotations

from distillguard.errors import DistillguardError


class IngestError(DistillguardError):
    """A warehouse or import failure with a message for the operator."""


class WarehouseLocked(IngestError):
    """Another process (usually ``distillguard serve``) holds the warehouse read-write."""


class WarehouseTooNew(IngestError):
    """The warehouse's schema version is newer than this distillguard knows."""


class MigrationError(IngestError):
    """A migration failed and was rolled back."""


class UnreadableInput(IngestError):
    """An input file cannot be read as the format it claims, or lacks required columns."""

    exit_code = 2
