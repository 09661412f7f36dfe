"""Commands contributed by this package to the ``distillguard`` CLI: ``distillguard simulate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _overrides(**options: Any) -> dict[str, Any]:
    names = {
        "days": "days",
        "people": "people.accounts",
        "rings": "rings.rings",
        "ring_accounts": "rings.accounts",
        "cover_fraction": "rings.cover_fraction",
    }
    return {names[k]: v for k, v in options.items() if v is not None}


def simulate_command(
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder to write the three Parquet files into (required).", file_okay=False
        ),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default: the config's, 0).")
    ] = None,
    scale: Annotated[
        float, typer.Option(help="Multiply every population size (accounts, rings) by this.")
    ] = 1.0,
    corpus: Annotated[
        Path | None,
        typer.Option(
            help="Folder of public prompt sets (e.g. ../shared/data/prompts).", file_okay=False
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(help="YAML file of knobs; unknown keys are refused.", dir_okay=False),
    ] = None,
    days: Annotated[int | None, typer.Option(help="Length of the window in days.")] = None,
    people: Annotated[
        int | None, typer.Option(help="Number of individual benign accounts.")
    ] = None,
    rings: Annotated[int | None, typer.Option(help="Number of extraction rings.")] = None,
    ring_accounts: Annotated[
        int | None, typer.Option(help="Ring accounts in total, split across the rings.")
    ] = None,
    cover_fraction: Annotated[
        float | None, typer.Option(help="Share of ring calls that are benign cover traffic.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    show_config: Annotated[
        bool,
        typer.Option(
            "--show-config", help="Print the effective config as YAML (every knob) and stop."
        ),
    ] = False,
) -> None:
    """Simulate API traffic with labelled extraction rings: accounts, calls and labels as Parquet.

    Writes accounts.parquet and calls.parquet (the ingest contracts) and labels.parquet (account_id, is_fraud, ring_id, role). Options override the config file; --scale applies first, then --people, --rings and --ring-accounts set exact numbers.
    """  # noqa: E501
    from distillguard.progress import progress_bar
    from ingest.simulator.config import SimulationConfig, load_config
    from ingest.simulator.engine import simulate, write
    from ingest.simulator.exceptions import ConfigError

    base = load_config(config) if config else SimulationConfig()
    base = base.scaled(scale) if scale != 1.0 else base
    updates = _overrides(
        days=days,
        people=people,
        rings=rings,
        ring_accounts=ring_accounts,
        cover_fraction=cover_fraction,
    )
    if seed is not None:
        updates["seed"] = seed
    settings = base.with_overrides(updates) if updates else base
    if show_config:
        typer.echo(settings.to_yaml(), nl=False)
        return
    if out is None:
        raise ConfigError("--out is required: the folder to write the Parquet files into")
    with progress_bar() as progress:
        task = progress.add_task("simulating", total=2)
        result = simulate(settings, corpus)
        progress.advance(task)
        paths = write(result, out)
        progress.advance(task)
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps({**summary, "files": {k: str(v) for k, v in paths.items()}}))
        return
    typer.echo(f"wrote {', '.join(str(p) for p in paths.values())}")
    typer.echo(
        f"accounts {summary['accounts']}  calls {summary['calls']}  rings {summary['rings']}"
        f"  ({summary['first_call']} .. {summary['last_call']}, corpus: {summary['corpus']})"
    )
    for role, count in summary["roles"].items():
        typer.echo(f"  {role:<17} {count}")


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.command("simulate")(simulate_command)
