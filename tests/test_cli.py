"""The root CLI: every command has help and is documented; user errors are a message and a code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from distillguard import __version__
from distillguard.cli import build_app, main

README = Path(__file__).resolve().parents[1] / "README.md"


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    """Every leaf command as (path, command). typer vendors click, so groups are duck-typed."""
    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(group: Any, prefix: tuple[str, ...]) -> None:
        for name, command in group.commands.items():
            path = (*prefix, name)
            if hasattr(command, "commands"):
                walk(command, path)
            else:
                found.append((path, command))

    walk(typer.main.get_command(build_app()), ())
    return found


def test_the_cli_has_every_part() -> None:
    paths = {" ".join(p) for p, _ in _commands()}
    for expected in (
        "simulate",
        "ingest calls",
        "ingest spool",
        "gateway",
        "keys create",
        "detect",
        "serve",
        "users create",
        "distill check",
        "distill run",
        "policies validate",
        "demo",
    ):
        assert expected in paths


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=" ".join)
def test_every_command_has_help_and_documentation(path: tuple[str, ...]) -> None:
    command = dict(_commands())[path]
    assert command.help or command.short_help, f"`distillguard {' '.join(path)}` has no help"
    documented = README.read_text(encoding="utf-8")
    assert f"distillguard {' '.join(path)}" in documented, (
        f"`distillguard {' '.join(path)}` is not shown in README.md"
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "distillguard.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "distillguard" in out.stdout


def test_usage_error_is_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["no-such-command"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "No such command" in err
    assert "Traceback" not in err
