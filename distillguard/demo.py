"""``distillguard demo``: the whole pipeline on the embedded defaults, start to finish.

Each stage is a function that takes the demo's folder and returns what the next stage needs, so a
stage can be read (and tested) on its own. Stages print what they did; nothing here is faked: the
demo runs the same code paths as the individual commands.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from ingest.warehouse import Warehouse


@dataclass(frozen=True)
class DemoPaths:
    """Where the demo writes everything (a fresh folder each run)."""

    root: Path

    @property
    def sim(self) -> Path:
        return self.root / "sim"

    @property
    def db(self) -> Path:
        return self.root / "distillguard.duckdb"


def _say(text: str) -> None:
    typer.secho(text, bold=True)


def stage_simulate(paths: DemoPaths, seed: int, scale: float, corpus: Path | None) -> None:
    """Simulate a population with rings and hard negatives."""
    from ingest.simulator import SimulationConfig, simulate, write

    _say(f"1. simulating traffic (seed {seed}, scale {scale}, corpus {corpus or 'built-in'})")
    config = SimulationConfig(seed=seed)
    if scale != 1.0:
        config = config.scaled(scale)
    result = simulate(config, corpus=corpus)
    write(result, paths.sim)
    typer.echo(
        f"   {result.accounts.num_rows:,} accounts, {result.calls.num_rows:,} calls -> {paths.sim}"
    )


def stage_ingest(paths: DemoPaths) -> None:
    """Load the simulated exports into a fresh warehouse, exactly once."""
    from ingest.loader import ingest_file

    _say(f"2. ingesting into {paths.db}")
    with Warehouse.open(paths.db) as wh:
        for kind, name in (("accounts", "accounts.parquet"), ("calls", "calls.parquet")):
            report = ingest_file(wh, paths.sim / name, kind)  # type: ignore[arg-type]
            typer.echo(
                f"   {kind}: {report.rows_loaded:,} loaded, {report.rows_duplicate:,} duplicate, "
                f"{report.rows_quarantined:,} quarantined ({report.seconds:.2f} s)"
            )


def stage_summary(paths: DemoPaths) -> None:
    """What arrived: volume, span, endpoints and models."""
    _say("3. what the warehouse holds")
    with Warehouse.open(paths.db, read_only=True) as wh:
        row = wh.fetchone(
            "SELECT count(*), count(DISTINCT account_id), min(ts), max(ts) FROM calls"
        )
        assert row is not None
        calls, accounts, first, last = row
        typer.echo(
            f"   {calls:,} calls from {accounts:,} accounts, {first:%Y-%m-%d} .. {last:%Y-%m-%d}"
        )
        for endpoint, n in wh.fetchall(
            "SELECT endpoint, count(*) AS n FROM calls GROUP BY ALL ORDER BY n DESC LIMIT 5"
        ):
            typer.echo(f"   {n:>9,}  {endpoint}")


def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the demo's files.")] = Path(
        "demo-out"
    ),
    seed: Annotated[int, typer.Option("--seed", help="Simulation seed.")] = 7,
    scale: Annotated[
        float, typer.Option("--scale", help="Population size relative to the default.")
    ] = 1.0,
    corpus: Annotated[
        Path | None,
        typer.Option(
            "--corpus",
            help="Folder of real public prompt sets (for example ../shared/data/prompts).",
            exists=True,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Simulate traffic, ingest it and report what arrived, on the embedded defaults."""
    paths = DemoPaths(out)
    if paths.root.exists():
        shutil.rmtree(paths.root)
    paths.root.mkdir(parents=True)
    stage_simulate(paths, seed, scale, corpus)
    stage_ingest(paths)
    stage_summary(paths)


def register(app: typer.Typer) -> None:
    """Add ``distillguard demo``."""
    app.command("demo")(demo)
