"""Options shared by several packages' commands, so every command spells them the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_DB = Path("distillguard.duckdb")

DbOption = Annotated[
    Path,
    typer.Option(
        "--db",
        envvar="DISTILLGUARD_DB",
        help="The DuckDB warehouse file.",
        dir_okay=False,
    ),
]
