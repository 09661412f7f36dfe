"""The demo's last stage: a sign-in for the console, then ``serve`` left running.

``distillguard demo`` calls :func:`stage_console` after its data stages::

    stage_console(paths.db, paths.root, paths.state)   # prints URL and sign-in, blocks until Ctrl-C
"""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_USER = "demo"


def prepare_console(db: Path) -> str:
    """Create (or reset) the ``demo`` admin with a fresh generated password; returns it."""
    from dashboards.auth import create_user, generate_password
    from ingest.warehouse import Warehouse

    password = generate_password()
    with Warehouse.open(db) as wh:
        wh.execute("DELETE FROM console_users WHERE username = $u", {"u": DEMO_USER})
        create_user(wh, DEMO_USER, "admin", password)
    return password


def stage_console(
    db: Path, root: Path, state: Path, host: str = "127.0.0.1", port: int = 8800
) -> None:
    """Print the console's URL and a demo sign-in, then run ``serve`` until interrupted."""
    from dashboards.cli import serve

    password = prepare_console(db)
    typer.secho(f"console: http://{host}:{port}  (sign in as {DEMO_USER} / {password})", bold=True)
    serve(db=db, spool=root / "spool", state=state, host=host, port=port)
