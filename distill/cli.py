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
