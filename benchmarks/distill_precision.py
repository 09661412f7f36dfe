"""Time distillation training steps in fp32 and in bf16 autocast on this CPU, in the same run.

    .venv/bin/python benchmarks/distill_precision.py              # 40 steps per precision, 2 rounds
    .venv/bin/python benchmarks/distill_precision.py --steps 100 --rounds 3

The job is the embedder job of ``distill_embedder.py`` (all-MiniLM-L6-v2 into its layers 0, 3 and 5,
on the shared prompt sets, batch 32, 128 tokens), run through ``distill.job.run_job`` in a scratch
folder with the ``precision`` hyperparameter set to ``fp32`` and to ``bf16`` in alternating rounds.
It prints each precision's best training-loop time (the loop alone: loading and the final
evaluation are left out) as steps per second, the ratio, and each precision's first-step loss (the
same batch from the same weights: bf16 rounding should move it only a little). Skips cleanly without
the shared prompt sets, and where the CPU has no native bf16 (autocast would run, slowly).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

# distill_embedder puts the project first on sys.path, as this script needs too
from distill_embedder import HYPERPARAMETERS, PROMPTS, write_job


def timed_run(folder: Path, precision: str, steps: int) -> tuple[float, float]:
    """Seconds of the training loop for ``steps`` steps, and the first step's loss."""
    from distill.job import run_job

    name = f"student-{precision}"
    job = folder / f"{name}.job.yaml"
    hyperparameters = HYPERPARAMETERS | {
        "student_layers": [0, 3, 5],
        "layer_map": {3: 6},
        "max_steps": steps,
        "max_examples": 4000,  # a short final evaluation (400 held-out prompts)
        "checkpoint_every": 10 * steps,  # one checkpoint, at the end
        "precision": precision,
    }
    write_job(job, folder / name, hyperparameters)
    record = run_job(job, device="cpu").provenance
    first = json.loads((folder / name / "run" / "metrics.jsonl").read_text().split("\n")[0])
    return float(record["training"]["seconds_this_run"]), float(first["loss"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="training steps per run")
    parser.add_argument("--rounds", type=int, default=2, help="fp32/bf16 pairs; the best counts")
    args = parser.parse_args()
    if args.steps < 1 or args.rounds < 1:
        parser.error("--steps and --rounds must be at least 1")
    if not PROMPTS.is_dir():
        print(f"skipped: shared prompt sets not found at {PROMPTS}")
        return
    import torch

    from detectors.embeddings import cpu_has_bfloat16

    if not cpu_has_bfloat16():
        print("skipped: this CPU has no native bfloat16")
        return
    best: dict[str, float] = {}
    losses: dict[str, float] = {}
    for _ in range(args.rounds):
        for precision in ("fp32", "bf16"):
            with tempfile.TemporaryDirectory(prefix="distill-precision-") as scratch:
                seconds, losses[precision] = timed_run(Path(scratch), precision, args.steps)
            best[precision] = min(best.get(precision, seconds), seconds)
    print(f"threads: {torch.get_num_threads()}")
    print(f"steps_per_run: {args.steps}")
    for precision in ("fp32", "bf16"):
        print(f"{precision}_steps_per_s: {args.steps / best[precision]:.2f}")
        print(f"{precision}_first_step_loss: {losses[precision]:.6f}")
    print(f"bf16_speedup: {best['fp32'] / best['bf16']:.2f}")


if __name__ == "__main__":
    main()
