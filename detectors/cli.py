"""``distillguard detect``, ``distillguard flags`` and ``distillguard evaluate``.

Heavy modules (torch, sentence-transformers, the pipeline) are imported inside the commands so that
``distillguard --help`` stays fast.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from distillguard.options import DEFAULT_DB, DbOption
from distillguard.progress import progress_bar

if TYPE_CHECKING:
    from ingest.warehouse import Warehouse


class DeviceChoice(StrEnum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class PrecisionChoice(StrEnum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class FlagsFormat(StrEnum):
    table = "table"
    json = "json"
    parquet = "parquet"
    csv = "csv"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


STAGES = ("setup", "features", "embeddings", "clusters", "behaviour", "baseline", "graph", "rings")


def register(app: typer.Typer) -> None:
    """Add this package's commands to ``app``."""
    app.command("detect")(detect_command)
    app.command("flags")(flags_command)
    app.command("evaluate")(evaluate_command)


def _parse_since(value: str | None) -> datetime | None:
    from detectors.exceptions import DetectorError

    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise DetectorError(
            f"--since {value!r} is not an ISO 8601 time (e.g. 2026-11-10T00:00:00Z)"
        ) from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _open(db: Path, *, read_only: bool = False) -> Warehouse:
    from detectors.exceptions import DetectorError
    from ingest.warehouse import Warehouse

    if not db.exists():
        raise DetectorError(f"no warehouse at {db}: load calls with `distillguard ingest` first")
    return Warehouse.open(db, read_only=read_only)


def detect_command(
    db: DbOption = DEFAULT_DB,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Incremental: only process calls at or after this time (ISO 8601); gives the "
            "same flags as a full run.",
        ),
    ] = None,
    device: Annotated[
        DeviceChoice, typer.Option("--device", help="Embedding device: auto picks CUDA if present.")
    ] = DeviceChoice.auto,
    precision: Annotated[
        PrecisionChoice | None,
        typer.Option(
            "--precision",
            help="Embedding number format: auto is float16 on CUDA and float32 on the CPU; "
            "bfloat16 is faster on a CPU that has it natively (AVX512-BF16 or AMX). Default: "
            "DETECT_PRECISION, else auto.",
        ),
    ] = None,
    embed_budget: Annotated[
        int | None,
        typer.Option(
            "--embed-budget",
            min=0,
            help="At most this many prompts are embedded (a sample per account, then template "
            "representatives); default from the detection policy.",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="A local sentence-transformers model directory (default: bundled MiniLM).",
            file_okay=False,
        ),
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option(
            "--policy", help="A detection policy file (default: the shipped one).", dir_okay=False
        ),
    ] = None,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="How to print the run summary.")
    ] = ReportFormat.table,
) -> None:
    """Run the detectors over the warehouse and record flagged accounts and rings."""
    from detectors.pipeline import run_detection
    from detectors.settings import get_settings
    from policies.detection import load_detection_policy

    settings = get_settings()
    loaded = load_detection_policy(policy or settings.policy_path)
    chosen_device = device.value if device != DeviceChoice.auto else settings.device
    since_ts = _parse_since(since)
    with _open(db) as wh, progress_bar() as progress:
        task = progress.add_task("detect", total=len(STAGES))

        def on_stage(name: str) -> None:
            progress.update(task, description=name, completed=STAGES.index(name))

        summary = run_detection(
            wh,
            since=since_ts,
            device=chosen_device,
            embed_budget=embed_budget,
            model_path=model or settings.model_path,
            precision=precision.value if precision is not None else None,
            policy=loaded,
            on_stage=on_stage,
        )
        progress.update(task, completed=len(STAGES))
    if output == ReportFormat.json:
        typer.echo(json.dumps(summary.to_dict(), indent=2))
        return
    typer.echo(
        f"run {summary.run_id} ({summary.mode}): {summary.n_calls} calls, "
        f"{summary.n_accounts} accounts, {summary.n_new_prompts} new prompts, "
        f"{summary.n_templates} templates, {summary.n_embedded} embedded "
        f"({summary.n_selected} selected, {summary.n_clusters} clusters, "
        f"{summary.device} {summary.precision})"
    )
    typer.echo(
        f"{summary.n_rings} candidate rings, {summary.n_flagged_rings} flagged; "
        f"{summary.n_flagged} accounts flagged"
    )
    typer.echo("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in summary.timings.items()))


def flags_command(
    db: DbOption = DEFAULT_DB,
    fmt: Annotated[
        FlagsFormat, typer.Option("--format", help="Output format.")
    ] = FlagsFormat.table,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write to this file instead of stdout.", dir_okay=False),
    ] = None,
    include_all: Annotated[
        bool, typer.Option("--all", help="Include accounts that were not flagged.")
    ] = False,
) -> None:
    """Show the flagged accounts (account, ring, score, top reasons) and the rings."""
    from detectors.results import export, flagged_accounts, ring_list

    with _open(db, read_only=True) as wh:
        accounts = flagged_accounts(wh, include_unflagged=include_all)
        rings = ring_list(wh)
    if fmt != FlagsFormat.table:
        text = export(accounts, rings, fmt.value, out)
        if text is not None:
            typer.echo(text, nl=False)
        return
    _print_flags(accounts, rings, out)


def _print_flags(
    accounts: list[dict[str, Any]], rings: list[dict[str, Any]], out: Path | None
) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = [r for r in rings if r["flagged"]] or rings[:10]
    ring_table = Table(title=f"rings ({sum(r['flagged'] for r in rings)} flagged of {len(rings)})")
    for column in ("ring", "size", "score", "flagged", "top evidence"):
        ring_table.add_column(column)
    for ring in shown:
        signals = ring["evidence"]["signals"]
        top = sorted(signals.items(), key=lambda kv: -kv[1]["contribution"])[:3]
        evidence = ", ".join(f"{name} {s['value']:.0%}" for name, s in top)
        templates = ring["evidence"].get("top_templates") or []
        if templates and templates[0].get("label"):
            evidence += f"; template: {templates[0]['label'][:60]}"
        ring_table.add_row(
            ring["ring_id"],
            str(ring["size"]),
            f"{ring['score']:.2f}",
            str(ring["flagged"]),
            evidence,
        )
    account_table = Table(title=f"flagged accounts ({sum(a['flagged'] for a in accounts)})")
    for column in ("account", "ring", "score", "flagged", "top reasons"):
        account_table.add_column(column)
    for account in accounts:
        account_table.add_row(
            account["account_id"],
            account["ring_id"] or "",
            f"{account['score']:.2f}",
            str(account["flagged"]),
            "; ".join(account["reasons"][:2]),
        )
    if out is not None:
        with out.open("w", encoding="utf-8") as handle:
            console = Console(file=handle, width=160)
            console.print(ring_table)
            console.print(account_table)
        return
    console = Console(width=160)
    console.print(ring_table)
    console.print(account_table)


def evaluate_command(
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            help="Ground truth: Parquet with account_id, is_fraud[, ring_id, role].",
            dir_okay=False,
        ),
    ],
    db: DbOption = DEFAULT_DB,
    replay: Annotated[
        int,
        typer.Option(
            "--replay",
            min=0,
            help="Replay detection at this many checkpoints to measure how many calls each ring "
            "made before it was flagged (0: skip).",
        ),
    ] = 4,
    output: Annotated[
        ReportFormat, typer.Option("--format", help="Output format.")
    ] = ReportFormat.table,
) -> None:
    """Precision, recall and F1 of the latest run against labels, next to the PRADA baseline."""
    from detectors.evaluate import evaluate

    with _open(db, read_only=replay == 0) as wh:
        result = evaluate(wh, labels, replay=replay)
    if output == ReportFormat.json:
        typer.echo(json.dumps(result, indent=2))
        return
    _print_evaluation(result)


def _first_flag(found: dict[str, Any] | None) -> str:
    if found is None:
        return "never"
    return f"{found['calls_before']} ({found['members_flagged']:.0%} of accounts flagged)"


def _print_evaluation(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    scores = Table(title=f"accounts: {result['accounts']} ({result['fraud_accounts']} fraudulent)")
    for column in ("detector", "precision", "recall", "F1", "TP", "FP", "FN"):
        scores.add_column(column)
    for name, key in (("full system", "system"), ("PRADA baseline", "baseline")):
        s = result[key]
        scores.add_row(
            name,
            f"{s['precision']:.3f}",
            f"{s['recall']:.3f}",
            f"{s['f1']:.3f}",
            str(s["tp"]),
            str(s["fp"]),
            str(s["fn"]),
        )
    console.print(scores)
    rings = Table(title="recall per ring")
    for column in ("ring", "accounts", "recall", "baseline recall", "calls before flagged"):
        rings.add_column(column)
    timing = {r["ring_id"]: r for r in result.get("time_to_flag", {}).get("rings", [])}
    for ring in result["rings"]:
        t = timing.get(ring["ring_id"])
        before = "not replayed"
        if t is not None:
            before = (
                f"{_first_flag(t['system'])} of {t['total_calls']} "
                f"(baseline: {_first_flag(t['baseline'])})"
            )
        rings.add_row(
            ring["ring_id"],
            str(ring["accounts"]),
            f"{ring['recall']:.3f}",
            f"{ring['baseline_recall']:.3f}",
            before,
        )
    console.print(rings)
    roles = Table(title="false positives by role")
    for column in ("role", "accounts", "full system", "PRADA baseline"):
        roles.add_column(column)
    for row in result["false_positives_by_role"]:
        roles.add_row(row["role"], str(row["accounts"]), str(row["system"]), str(row["baseline"]))
    console.print(roles)
