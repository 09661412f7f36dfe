"""The one ``distillguard`` command. Each package contributes its commands through ``register``.

Package CLIs import their heavy dependencies (torch, sentence-transformers, the gateway) inside the
command functions, so ``distillguard --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import click
import typer

from distillguard import __version__
from distillguard.errors import DistillguardError

Register = Callable[[typer.Typer], None]

# typer 0.29 vendors its own click; catch usage errors from whichever click raised them.
try:
    from typer._click.exceptions import ClickException as _TyperClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    _TyperClickException = click.ClickException  # type: ignore[misc,assignment]
_CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException, _TyperClickException)


def _registrars() -> list[Register]:
    from dashboards.cli import register as dashboards
    from detectors.cli import register as detectors
    from distill.cli import register as distill
    from distillguard.demo import register as demo
    from guard.cli import register as guard
    from ingest.cli import register as ingest
    from ingest.simulator.cli import register as simulator
    from policies.cli import register as policies

    return [ingest, simulator, guard, detectors, distill, policies, dashboards, demo]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"distillguard {__version__}")
        raise typer.Exit()


def build_app() -> typer.Typer:
    """Assemble the CLI from every package's commands."""
    app = typer.Typer(
        name="distillguard",
        help="Guard a model API against extraction and distil models within their licences.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version."
        ),
    ) -> None:
        """distillguard: gateway, detectors, review console and licence-gated distillation."""

    for register in _registrars():
        register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI, turning user-facing errors into a message and exit code."""
    app = build_app()
    code: object = None
    try:
        code = app(args=argv, standalone_mode=False)
    except DistillguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:
        if isinstance(exc, _CLICK_ERRORS):  # usage errors carry their own message and exit code
            exc.show()  # type: ignore[attr-defined]
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
