"""``distillguard policies``: validate policy files and list the licence registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from policies.exceptions import PolicyFileError


def register(app: typer.Typer) -> None:
    """Add the ``policies`` group to ``app``."""
    group = typer.Typer(help="Validate policy files and list the licence registry.")
    group.command("validate")(validate_command)
    group.command("licenses")(licenses_command)
    app.add_typer(group, name="policies")


def validate_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Policy files; default: every shipped file.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Policy kind for every PATH (licence, org, enforcement).")
    ] = None,
) -> None:
    """Validate policy files; print each file's hash, or every error with file, line and field."""
    from policies.catalog import shipped_files, validate

    targets = [(kind, p) for p in paths] if paths else list(shipped_files())
    errors: list[str] = []
    for file_kind, path in targets:
        try:
            loaded = validate(path, file_kind)
        except PolicyFileError as exc:
            errors.append(str(exc))
            continue
        typer.echo(f"ok  {path}  sha256:{loaded.sha256[:16]}")
    if errors:
        raise PolicyFileError(
            f"{len(errors)} of {len(targets)} policy files are invalid:\n" + "\n".join(errors)
        )


def licenses_command(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
) -> None:
    """List the licence registry: id, Hub ids and the machine-readable answers."""
    from policies.licenses import shipped_registry

    registry = list(shipped_registry())
    if as_json:
        rows = [
            {**loaded.model.model_dump(mode="json"), "sha256": loaded.sha256} for loaded in registry
        ]
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for loaded in registry:
        entry = loaded.model
        names = ",".join(entry.hf_ids) or (
            f"api:{entry.api_provider}" if entry.api_provider else "-"
        )
        typer.echo(
            f"{entry.id:<45} {names:<28} train={entry.train_other_models.value:<18} "
            f"commercial={entry.commercial.value:<7} derivative={entry.student_is_derivative.value}"
        )
