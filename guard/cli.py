"""Commands contributed by this package to the ``distillguard`` CLI."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
