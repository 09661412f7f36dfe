"""Time the embedder job's training steps under two settings, in the same run: fp32 against bf16
autocast, PyTorch's per-parameter AdamW against the fused one, the live teacher against its cached
states (``cache_teacher``).

    .venv/bin/python benchmarks/distill_steps.py        # every comparison, 30 steps, 2 rounds
    .venv/bin/python benchmarks/distill_steps.py --compare optimizer --steps 100 --rounds 3

The job is the embedder job of ``distill_embedder.py`` with its 3x student (all-MiniLM-L6-v2's
layers 0, 3 and 5 pruned to 10 heads and 720 feed-forward units, the final layer's token states
and the pooled embedding as targets, crops on half the texts, batch 32, 128 tokens, on 4,000 of the
shared prompts), run through ``distill.job.run_job`` in a scratch folder. The two settings of a
comparison run in alternating rounds, everything else at its default (fp32, fused AdamW, live
teacher). It prints each setting's best training-loop time (the loop alone) as steps per second,
the ratio, each setting's whole-job seconds (loading, pruning, the teacher cache's one pass and the
final evaluation included) and its first-step loss (the same batch from the same weights: the
settings should move it only by rounding). Skips cleanly without the shared prompt sets; the
precision comparison is skipped where the CPU has no native bf16 (autocast would run, slowly).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

# distill_embedder puts the project first on sys.path, as this script needs too
from distill_embedder import HYPERPARAMETERS, PROMPTS, write_job

COMPARISONS: dict[str, tuple[tuple[str, dict[str, object]], tuple[str, dict[str, object]]]] = {
    "precision": (("fp32", {"precision": "fp32"}), ("bf16", {"precision": "bf16"})),
    "optimizer": (
        ("adamw_torch", {"optimizer": "adamw_torch"}),
        ("adamw_torch_fused", {"optimizer": "adamw_torch_fused"}),
    ),
    "teacher": (("live", {"cache_teacher": False}), ("cached", {"cache_teacher": True})),
}


def timed_run(folder: Path, setting: dict[str, object], steps: int) -> tuple[float, float, float]:
    """Seconds of the training loop for ``steps`` steps, of the whole job, and the first loss."""
    from distill.job import run_job

    job = folder / "student.job.yaml"
    hyperparameters = HYPERPARAMETERS | {
        "student_layers": [0, 3, 5],
        "attention_heads": 10,
        "ffn_size": 720,
        "layer_map": {3: 6},
        "max_steps": steps,
        "max_examples": 4000,  # a short final evaluation (400 held-out prompts)
        "checkpoint_every": 10 * steps,  # one checkpoint, at the end
        **setting,
    }
    write_job(job, folder / "student", hyperparameters)
    started = time.monotonic()
    record = run_job(job, device="cpu").provenance
    wall = time.monotonic() - started
    first = json.loads((folder / "student" / "run" / "metrics.jsonl").read_text().split("\n")[0])
    return float(record["training"]["seconds_this_run"]), wall, float(first["loss"])


def compare(name: str, steps: int, rounds: int) -> None:
    pair = COMPARISONS[name]
    best: dict[str, float] = {}
    walls: dict[str, float] = {}
    losses: dict[str, float] = {}
    for _ in range(rounds):
        for label, setting in pair:
            with tempfile.TemporaryDirectory(prefix="distill-steps-") as scratch:
                seconds, wall, losses[label] = timed_run(Path(scratch), setting, steps)
            best[label] = min(best.get(label, seconds), seconds)
            walls[label] = min(walls.get(label, wall), wall)
    for label, _ in pair:
        print(f"{name}.{label}_steps_per_s: {steps / best[label]:.2f}")
        print(f"{name}.{label}_job_s: {walls[label]:.1f}")
        print(f"{name}.{label}_first_step_loss: {losses[label]:.6f}")
    (base, _), (other, _) = pair
    print(f"{name}.speedup: {best[base] / best[other]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compare", choices=[*COMPARISONS, "all"], default="all")
    parser.add_argument("--steps", type=int, default=30, help="training steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs; the best counts")
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")
    if not PROMPTS.is_dir():
        print(f"skipped: shared prompt sets not found at {PROMPTS}")
        return
    import torch

    from detectors.embeddings import cpu_has_bfloat16

    print(f"threads: {torch.get_num_threads()}")
    print(f"steps_per_run: {args.steps}")
    for name in COMPARISONS if args.compare == "all" else [args.compare]:
        if name == "precision" and not cpu_has_bfloat16():
            print("precision: skipped, this CPU has no native bfloat16")
            continue
        compare(name, args.steps, args.rounds)


if __name__ == "__main__":
    main()
