"""Commands contributed by this package: ``serve`` and ``users create|list``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from distillguard.options import DbOption

users_app = typer.Typer(help="Console users (viewer, reviewer, admin).", no_args_is_help=True)


def serve(
    db: DbOption = Path("distillguard.duckdb"),
    spool: Annotated[
        Path | None, typer.Option(help="Gateway spool to ingest [default: distillguard-spool].")
    ] = None,
    state: Annotated[
        Path | None,
        typer.Option(
            dir_okay=False, help="Published-state file [default: distillguard-state.json]."
        ),
    ] = None,
    redis: Annotated[
        str | None, typer.Option(help="Publish state to Redis at this URL instead of a file.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8800,
    detect_interval: Annotated[
        float | None, typer.Option(min=0.1, help="Seconds between scheduled detection runs.")
    ] = None,
    embed_budget: Annotated[
        int | None, typer.Option(min=0, help="Prompts embedded per run [default: the policy's].")
    ] = None,
) -> None:
    """Run the control plane: ingest the spool, detect, serve the console, publish decisions."""
    import uvicorn

    from dashboards.app import create_app
    from dashboards.control import ControlPlane
    from dashboards.settings import DashboardsSettings

    overrides: dict[str, object] = {"db": db}
    for name, value in (
        ("spool", spool),
        ("state", state),
        ("redis", redis),
        ("detect_interval_s", detect_interval),
        ("detect_embed_budget", embed_budget),
    ):
        if value is not None:
            overrides[name] = value
    settings = DashboardsSettings(**overrides)  # type: ignore[arg-type]
    plane = ControlPlane(settings)  # a held or too-new warehouse is refused here, with a message
    typer.echo(f"distillguard console on http://{host}:{port} (warehouse {settings.db})")
    try:
        uvicorn.run(
            create_app(settings, plane), host=host, port=port, log_level="warning",
            proxy_headers=True,
        )  # fmt: skip
    finally:
        plane.close()


@users_app.command("create")
def create_user(
    username: Annotated[str, typer.Option("--username", help="The sign-in name.")],
    role: Annotated[str, typer.Option("--role", help="viewer, reviewer or admin.")],
    db: DbOption = Path("distillguard.duckdb"),
) -> None:
    """Add a console user. The password is read from stdin, or generated and printed once."""
    from dashboards.auth import check_role, create_user, generate_password
    from ingest.warehouse import Warehouse

    check_role(role)
    password = "" if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
    generated = not password
    if generated:
        password = generate_password()
    with Warehouse.open(db) as wh:
        user = create_user(wh, username, role, password)
    typer.echo(f"created {user.role} {user.username}")
    if generated:
        typer.echo(f"password (shown once): {password}")


@users_app.command("list")
def list_users(db: DbOption = Path("distillguard.duckdb")) -> None:
    """List console users and their roles."""
    from dashboards.auth import list_users
    from ingest.warehouse import Warehouse

    with Warehouse.open(db, read_only=True) as wh:
        for row in list_users(wh):
            typer.echo(f"{row['username']}\t{row['role']}\t{row['created_at']}")


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.command("serve")(serve)
    app.add_typer(users_app, name="users")
