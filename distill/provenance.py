"""``distillation_provenance.json`` and the model card section a student is written with."""

from __future__ import annotations

import json
import platform
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from distill.obligations import OWED_BY_DISTRIBUTOR, Met, text_of
from distill.spec import JobSpec
from ingest.formats import sha256_file
from policies.gate import Decision
from policies.licenses import Registry, shipped_registry

PROVENANCE_FILE = "distillation_provenance.json"
SCHEMA = "distillguard.distillation_provenance/1"
_PACKAGES = ("distillguard", "torch", "transformers", "sentence-transformers", "tokenizers")


def software_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def build(
    *,
    spec: JobSpec,
    job_path: Path,
    job_sha256: str,
    decision: Decision,
    met: list[Met],
    hyperparameters: dict[str, Any],
    teacher_files: dict[str, str],
    data_counts: dict[str, int],
    training: dict[str, Any],
    metrics: dict[str, Any],
    report: dict[str, Any],
) -> dict[str, Any]:
    """The provenance record: who taught whom, under which licences and decision, on what data."""
    return {
        "schema": SCHEMA,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "student": {
            "name": spec.student_name,
            "base": spec.student,
            "base_licences": decision.licences.get("student base", []),
            "from_scratch": Path(spec.student).is_file(),
        },
        "teacher": {
            "model": spec.teacher,
            "licences": decision.licences.get("teacher", []),
            "files_sha256": teacher_files,
        },
        "data": [
            {
                "label": entry.label,
                "path": entry.path,
                "license": entry.license,
                "attribution": entry.attribution,
                "sha256": sha256_file(Path(entry.path)) if entry.path else None,
                "examples": data_counts.get(entry.label, 0),
            }
            for entry in spec.data
        ],
        "use": spec.use,
        "job": {"path": str(job_path), "sha256": job_sha256},
        "gate": decision.model_dump(mode="json"),
        "obligations": [m.record() for m in met],
        "method": spec.method,
        "hyperparameters": hyperparameters,
        "training": training,
        "metrics": metrics,
        "report": report,
        "software": software_versions(),
    }


def card_licences(decision: Decision, registry: Registry) -> list[str]:
    """Hub licence ids for the student's card: those of its base and of what taught it."""
    ids: list[str] = []
    for role in ("student base", "teacher"):
        for licence in decision.licences.get(role, []):
            loaded = registry.entries.get(licence)
            hub = loaded.model.hf_ids[0] if loaded and loaded.model.hf_ids else licence
            if hub not in ids:
                ids.append(hub)
    return ids


def model_card(record: dict[str, Any], spec: JobSpec, met: list[Met]) -> str:
    """The student's README.md: front matter a later gate can read, then provenance for people.

    The front matter names licences only (a local base path is no Hub id a gate could resolve).
    """
    registry = shipped_registry()
    decision = Decision.model_validate(record["gate"])
    licences = card_licences(decision, registry)
    front: dict[str, Any] = {
        "license": licences[0] if len(licences) == 1 else licences,
        "tags": ["distillation", "distillguard"],
    }
    lines = [f"---\n{yaml.safe_dump(front, sort_keys=False)}---", ""]
    built = [text_of(m.obligation, spec) for m in met if m.obligation.kind == "built_with"]
    for text in dict.fromkeys(built):
        lines += [f"**{text}**", ""]
    lines += [f"# {spec.student_name}", "", "## Distillation provenance", ""]
    lines += [
        f"- Teacher: `{spec.teacher}` ({', '.join(decision.licences.get('teacher', [])) or '?'})",
        f"- Student base: `{spec.student}` "
        f"({', '.join(decision.licences.get('student base', [])) or 'trained from scratch'})",
        f"- Method: {spec.method}; intended use: {spec.use}",
        f"- Licence gate decision: **{decision.decision}** (policy {decision.policy_hash[:16]})",
        f"- This model is a modification: it was distilled by distillguard on "
        f"{record['created_at']}; its weights differ from every file it was derived from.",
    ]
    for item in record["data"]:
        credit = f"; attribution: {item['attribution']}" if item.get("attribution") else ""
        lines.append(
            f"- Data: {item['label']} ({item['license']}), {item['examples']} examples{credit}"
        )
    metrics = record["metrics"]
    if metrics:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, float))
        lines.append(f"- Evaluation against the teacher: {shown}")
    lines += ["", "### Licence clauses the decision rests on", ""]
    for reason in decision.reasons:
        lines.append(
            f"- {reason.role}: {reason.licence} {reason.clause} ({reason.outcome}): "
            f"{reason.message}"
        )
    restrictions = [m for m in met if m.obligation.kind == "pass_through_use_restrictions"]
    if restrictions:
        lines += ["", "### Use restrictions (passed through to every user)", ""]
        for m in restrictions:
            ob = m.obligation
            lines.append(
                f"- {ob.licence} {ob.clause}: use of this model is subject to {text_of(ob, spec)}."
            )
    stated = [
        m
        for m in met
        if m.obligation.kind in {"attribution", "content_licence", "share_alike"}
        or m.obligation.kind in OWED_BY_DISTRIBUTOR
    ]
    if stated:
        lines += ["", "### Conditions on distribution", ""]
        for m in stated:
            ob = m.obligation
            lines.append(f"- {ob.licence} {ob.clause} ({ob.kind}): {text_of(ob, spec)}")
    lines += ["", "### Obligations and how they were met", ""]
    for m in met:
        ob = m.obligation
        lines.append(f"- {ob.kind} [{ob.licence} {ob.clause}]: {text_of(ob, spec)}: {m.how}")
    lines += [
        "",
        f"Every obligation and how it was met is listed in `{PROVENANCE_FILE}`; licence copies "
        "are under `LICENSES/`, notices in `NOTICE`.",
        "",
    ]
    return "\n".join(lines)


def write(directory: Path, record: dict[str, Any], spec: JobSpec, met: list[Met]) -> None:
    """Write the provenance record and the model card into the student folder."""
    (directory / PROVENANCE_FILE).write_text(
        json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (directory / "README.md").write_text(model_card(record, spec, met), encoding="utf-8")
