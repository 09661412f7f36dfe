"""``distill run``: validate, ask the licence gate, meet obligations, train, evaluate, write.

Nothing that can load a model (torch, transformers, the trainers) is imported before the gate
has allowed the job and every obligation that must hold before training holds.

The output folder receives the student (weights, tokenizer, README.md, provenance, LICENSES/,
NOTICE); ``run/`` below it holds metrics.jsonl, caches and the checkpoints ``--resume`` uses.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.config import TrainConfig, parse_config
from distill.data import data_sha256, load_examples, split
from distill.exceptions import DistillError, GateDenied
from distill.methods import METHODS
from distill.obligations import fulfil, precheck
from distill.provenance import PROVENANCE_FILE
from distill.spec import JobSpec, load_job_spec
from policies.gate import Decision, check, load_org_policy
from policies.settings import get_settings


@dataclass(frozen=True)
class Prepared:
    """A job that passed validation, the gate and the obligation precheck."""

    spec: JobSpec
    path: Path
    sha256: str
    config: TrainConfig
    decision: Decision


@dataclass(frozen=True)
class JobResult:
    """A finished job."""

    student_dir: Path
    provenance: dict[str, Any]


def refusal_message(decision: Decision) -> str:
    refusals = [r for r in decision.reasons if r.outcome == "refuses"]
    lines = [f"{r.role}: {r.licence} {r.clause}: {r.message}" for r in refusals]
    return "the licence gate denied the job; nothing was loaded:\n  " + "\n  ".join(lines)


def prepare(path: Path, org: Path | None = None) -> Prepared:
    """Validate the spec and its hyperparameters, ask the gate, check obligations. No models."""
    loaded = load_job_spec(path)
    spec = loaded.model
    config = parse_config(METHODS[spec.method].config, spec.hyperparameters, str(path))
    decision = check(spec, org=load_org_policy(org or get_settings().org_policy))
    if decision.decision == "deny":
        raise GateDenied(refusal_message(decision))
    precheck(decision, spec)
    return Prepared(spec, path, loaded.sha256, config, decision)


def run_job(
    path: Path,
    *,
    resume: bool = False,
    device: str = "auto",
    stop_after: int | None = None,
    org: Path | None = None,
) -> JobResult:
    """Run the job at ``path`` to the end, or ``stop_after`` steps (then JobInterrupted)."""
    job = prepare(path, org)
    spec, config = job.spec, job.config
    examples = load_examples(spec.data)[: config.max_examples]
    train_set, eval_set = split(examples, config.eval_fraction)
    out = Path(spec.output_dir)
    run_dir = out / "run"
    if (out / PROVENANCE_FILE).exists():
        raise DistillError(f"{out} already holds a finished student; choose another output_dir")
    if out.exists() and not resume and any(p.name != "run" for p in out.iterdir()):
        raise DistillError(f"{out} exists and is not empty; choose another output_dir")
    from distill.models import (
        autocast_dtype,
        check_model_source,
        file_sha256,
        precision_name,
        resolve_device,
    )

    torch_device = resolve_device(device)
    dtype = autocast_dtype(torch_device, config.precision)
    if not spec.teacher.startswith("api:"):
        check_model_source(Path(spec.teacher), "teacher")
    check_model_source(Path(spec.student), "student")
    run_dir.mkdir(parents=True, exist_ok=True)

    from distill import loop, provenance
    from distill.trainer import JobContext

    ctx = JobContext(spec, train_set, eval_set, torch_device, run_dir)
    trainer = METHODS[spec.method].build(ctx, config)
    trainer.prepare()
    fingerprint = hashlib.sha256(f"{job.sha256}:{data_sha256(examples)}".encode()).hexdigest()
    result = loop.train(
        trainer,
        config,
        run_dir,
        resume=resume,
        stop_after=stop_after,
        fingerprint=fingerprint,
        device=ctx.device,
    )
    metrics = trainer.evaluate()

    partial = run_dir / "student.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    trainer.save_student(partial)
    met = fulfil(job.decision, spec, partial)
    record = provenance.build(
        spec=spec,
        job_path=path,
        job_sha256=job.sha256,
        decision=job.decision,
        met=met,
        hyperparameters=config.model_dump(mode="json"),
        teacher_files=file_sha256(Path(spec.teacher))
        if not spec.teacher.startswith("api:")
        else {},
        data_counts=dict(Counter(e.source for e in examples)),
        training={
            "steps": result.steps,
            "total_steps": result.total_steps,
            "resumed_from": result.resumed_from,
            "seconds_this_run": round(result.seconds, 2),
            "last_loss": result.last_loss,
            "device": str(ctx.device),
            "autocast": precision_name(dtype),
            "train_examples": len(train_set),
            "eval_examples": len(eval_set),
            "data_sha256": data_sha256(examples),
        },
        metrics=metrics,
        report=ctx.report,
    )
    provenance.write(partial, record, spec, met)
    for item in sorted(partial.iterdir(), key=lambda p: p.name == PROVENANCE_FILE):
        target = out / item.name
        if target.is_dir():
            shutil.rmtree(target)
        shutil.move(str(item), str(target))
    partial.rmdir()
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    return JobResult(out, record)
