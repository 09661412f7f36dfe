"""``distillguard distill``: licence-gated distillation jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

EXIT_DENY = 2


def register(app: typer.Typer) -> None:
    """Add the ``distill`` group to ``app``."""
    group = typer.Typer(help="Licence-gated distillation jobs.")
    group.command("check")(check_command)
    group.command("run")(run_command)
    group.command("methods")(methods_command)
    app.add_typer(group, name="distill")


def check_command(
    job: Annotated[Path, typer.Argument(help="The job spec (YAML).", dir_okay=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    org: Annotated[
        Path | None,
        typer.Option(help="Org policy file (default: POLICIES_ORG_POLICY or the shipped one)."),
    ] = None,
) -> None:
    """Decide whether JOB may run. Exit 0: allow (with obligations); 2: deny; 1: invalid spec."""
    from distill.spec import load_job_spec
    from policies.gate import check, load_org_policy
    from policies.settings import get_settings

    spec = load_job_spec(job)
    decision = check(spec.model, org=load_org_policy(org or get_settings().org_policy))
    if as_json:
        body = {
            **decision.model_dump(mode="json"),
            "job": {"path": str(job), "sha256": spec.sha256},
        }
        typer.echo(json.dumps(body, indent=2, ensure_ascii=False))
    else:
        typer.echo(
            f"decision: {decision.decision}  (use: {decision.use}, job sha256:"
            f"{spec.sha256[:16]}, policy {decision.policy_hash[:16]})"
        )
        for role, found in decision.evidence.items():
            typer.echo(f"  {role}: {'; '.join(found) or 'no licence found'}")
        # Refusals first: they are what a denied job's author has to act on.
        for reason in sorted(decision.reasons, key=lambda r: r.outcome != "refuses"):
            typer.echo(
                f"  [{reason.outcome}] {reason.role}: {reason.licence} "
                f"{reason.clause}: {reason.message}"
            )
        for item in decision.obligations:
            typer.echo(
                f"  owe ({item.status}) {item.kind}: {item.text}  "
                f"[{item.licence} {item.clause}; when {item.applies_when}]"
            )
    if decision.decision == "deny":
        raise typer.Exit(EXIT_DENY)


def run_command(
    job: Annotated[Path, typer.Argument(help="The job spec (YAML).", dir_okay=False)],
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the last checkpoint in output_dir.")
    ] = False,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = "auto",
    stop_after: Annotated[
        int | None,
        typer.Option(min=1, help="Stop (with a checkpoint) after this many steps; --resume."),
    ] = None,
    org: Annotated[
        Path | None,
        typer.Option(help="Org policy file (default: POLICIES_ORG_POLICY or the shipped one)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the provenance record.")] = False,
) -> None:
    """Gate, train, evaluate and write the student with its provenance.

    Exit 0: done; 1: invalid job or failure; 2: the licence gate denied it (nothing loaded);
    3: an obligation cannot be met; 130: stopped early with a checkpoint (use --resume).
    """
    from distill.exceptions import DistillError
    from distill.job import run_job

    if device not in ("auto", "cpu", "cuda"):
        raise DistillError(f"--device must be auto, cpu or cuda, got {device!r}")
    result = run_job(job, resume=resume, device=device, stop_after=stop_after, org=org)
    record = result.provenance
    if as_json:
        typer.echo(json.dumps(record, indent=2, ensure_ascii=False))
        return
    training = record["training"]
    typer.echo(
        f"student: {result.student_dir}  ({record['method']}, {training['steps']} steps on "
        f"{training['device']}, gate: {record['gate']['decision']})"
    )
    for key, value in {**record["metrics"], **record["report"]}.items():
        typer.echo(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    for item in record["obligations"]:
        typer.echo(f"  met {item['kind']} [{item['licence']} {item['clause']}]: {item['how']}")


def methods_command() -> None:
    """List the distillation methods and their hyperparameters."""
    from distill.methods import METHODS

    for name, entry in METHODS.items():
        typer.echo(f"{name}: {entry.summary}")
        for field, info in entry.config.model_fields.items():
            default = info.get_default(call_default_factory=True)  # layer_map's {} as {}
            typer.echo(f"  {field} (default {default!r}): {info.description}")
