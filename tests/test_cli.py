"""The root CLI: every command has help, and user-facing errors become a message and exit code."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
import typer

from distillguard import __version__
from distillguard.cli import build_app, main


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(_all_commands(command, path))
    return found


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--version"])
    assert __version__ in capsys.readouterr().out


def test_every_command_has_help_text() -> None:
    group = typer.main.get_command(build_app())
    if not isinstance(group, click.Group):  # no package has registered a command yet
        return
    for path in _all_commands(group):
        command: click.Command = group
        for part in path:
            assert isinstance(command, click.Group)
            command = command.commands[part]
        assert command.help or command.short_help, f"`distillguard {' '.join(path)}` has no help"


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
