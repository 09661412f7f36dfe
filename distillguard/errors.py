"""The root of every error distillguard reports to a user.

    DistillguardError            a failure with a message meant for a person; exit code 1
    ├── ingest.exceptions.*      warehouse and import failures
    ├── guard.exceptions.*       gateway failures
    ├── policies.exceptions.*    invalid policy files, licence-gate refusals
    └── ...                      one ``exceptions.py`` per package, each deriving from this class

The CLI catches ``DistillguardError``, prints ``error: <message>`` on stderr and exits with
``exit_code``; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DistillguardError(Exception):
    """An error whose message is written for the person running the command."""

    exit_code: int = 1
