"""Progress bars that show on a terminal and stay silent in pipes and CI logs."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def interactive() -> bool:
    """True when stderr is a terminal, the only case in which progress is drawn."""
    return sys.stderr.isatty()


@contextmanager
def progress_bar(enabled: bool | None = None) -> Iterator[Progress]:
    """A rich ``Progress`` drawn on stderr; disabled (a no-op) unless stderr is a terminal."""
    show = interactive() if enabled is None else enabled
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show,
        transient=False,
    )
    with progress:
        yield progress
