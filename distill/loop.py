"""The training loop every method shares: batching, AdamW, metrics as JSON Lines, checkpoints.

A method supplies a :class:`Method` (its modules, its loss on a batch of example indices). The
loop orders batches from the seed and the epoch alone, and a checkpoint holds the trainable
weights, the optimiser, the scheduler and the RNG state, so an interrupted run resumed with
``--resume`` takes the same steps it would have taken without the interruption. The loss runs
under the autocast the ``precision`` hyperparameter names (by default bf16 on CUDA, fp16 where bf16
is unsupported, and fp32 on CPU); fp16 steps scale the loss (a ``GradScaler``, checkpointed too) so
that small gradients do not underflow.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from distill.config import TrainConfig
from distill.exceptions import CheckpointError, JobInterrupted
from distill.models import autocast, autocast_dtype
from distillguard.progress import progress_bar

_KEEP_CHECKPOINTS = 2


class Method(Protocol):
    """What a method's trainer gives the loop."""

    def trainable(self) -> dict[str, nn.Module]:
        """The modules whose weights are trained and checkpointed, by name."""
        ...

    def example_lengths(self) -> list[int]:
        """The token length of each training example (their count is the training set's size)."""
        ...

    def loss(self, indices: list[int]) -> tuple[Tensor, dict[str, float]]:
        """The loss on the training examples ``indices`` and extra metrics to log."""
        ...


@dataclass(frozen=True)
class LoopResult:
    """How training went."""

    steps: int
    total_steps: int
    resumed_from: int | None
    last_loss: float | None
    seconds: float


def total_steps(config: TrainConfig, examples: int) -> tuple[int, int]:
    """``(steps per epoch, total steps)`` for ``examples`` training examples."""
    per_epoch = math.ceil(examples / config.batch_size)
    total = per_epoch * config.epochs
    return per_epoch, min(total, config.max_steps) if config.max_steps else total


_LENGTH_GROUP = 50
"""With ``group_by_length``, examples are sorted by length within runs of this many batches."""


def batch_indices(config: TrainConfig, lengths: list[int], step: int, per_epoch: int) -> list[int]:
    """The example indices of ``step``: a permutation seeded by the seed and the epoch.

    With ``group_by_length`` the permutation is cut into runs of 50 batches, each run sorted by
    example length (longest first) and cut into batches, and the batches are shuffled: batches
    of similar lengths pad little, and every example is still seen once per epoch.
    """
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + epoch)
    order = torch.randperm(len(lengths), generator=generator).tolist()
    size = config.batch_size
    if not config.group_by_length:
        return order[position * size : (position + 1) * size]
    run = size * _LENGTH_GROUP
    batches = []
    for start in range(0, len(order), run):
        grouped = sorted(order[start : start + run], key=lambda i: -lengths[i])
        batches += [grouped[k : k + size] for k in range(0, len(grouped), size)]
    shuffled = torch.randperm(len(batches), generator=generator).tolist()
    return batches[shuffled[position]]


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("step-*.pt"))


def _save(folder: Path, state: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{state['step']:08d}.pt"
    partial = final.with_suffix(".pt.partial")
    torch.save(state, partial)
    os.replace(partial, final)
    for old in _checkpoints(folder)[:-_KEEP_CHECKPOINTS]:
        old.unlink()


def _trim_metrics(path: Path, upto: int) -> None:
    """Drop metric lines past the checkpoint resumed from (the interrupted run logged them)."""
    if not path.exists():
        return
    kept = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("step", 0) <= upto
    ]
    path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def train(
    method: Method,
    config: TrainConfig,
    run_dir: Path,
    *,
    resume: bool,
    stop_after: int | None = None,
    fingerprint: str = "",
    device: torch.device | None = None,
) -> LoopResult:
    """Train ``method`` to the end (or ``stop_after`` steps), checkpointing under ``run_dir``."""
    folder = run_dir / "checkpoints"
    metrics_path = run_dir / "metrics.jsonl"
    modules = method.trainable()
    params = [p for m in modules.values() for p in m.parameters() if p.requires_grad]
    device = device or torch.device("cpu")
    fused = config.optimizer == "adamw_torch_fused"
    optimiser = torch.optim.AdamW(
        params, lr=config.learning_rate, weight_decay=config.weight_decay, fused=fused
    )
    lengths = method.example_lengths()
    per_epoch, total = total_steps(config, len(lengths))
    warmup = int(total * config.warmup_fraction)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimiser,
        lambda s: (
            (s + 1) / warmup if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
        ),
    )
    # fp16 gradients underflow without loss scaling (bf16 has fp32's range and needs none)
    scaler = torch.amp.GradScaler(
        device.type, enabled=autocast_dtype(device, config.precision) == torch.float16
    )
    step, resumed_from = 0, None
    existing = _checkpoints(folder)
    if resume:
        if not existing:
            raise CheckpointError(f"--resume: no checkpoint under {folder}")
        state = torch.load(existing[-1], map_location="cpu", weights_only=False)
        if state["fingerprint"] != fingerprint:
            raise CheckpointError(
                f"--resume: {existing[-1]} was written for another job spec, data or "
                "hyperparameters; remove the folder or restore the job"
            )
        for name, module in modules.items():
            module.load_state_dict(state["modules"][name])
        optimiser.load_state_dict(state["optimiser"])
        for group in optimiser.param_groups:  # the job's implementation, not the checkpoint's
            group["fused"] = fused
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        if state.get("cuda_rng") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        step = resumed_from = state["step"]
        _trim_metrics(metrics_path, step)
    elif existing:
        raise CheckpointError(
            f"{folder} holds checkpoints of an earlier run: pass --resume to continue it, or "
            "remove the folder to start again"
        )
    elif metrics_path.exists():
        metrics_path.unlink()

    def checkpoint(at: int) -> None:
        _save(
            folder,
            {
                "step": at,
                "fingerprint": fingerprint,
                "modules": {n: m.state_dict() for n, m in modules.items()},
                "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
        )

    started, first, last_loss = time.monotonic(), step, None
    for module in modules.values():
        module.train()
    with progress_bar() as bar, metrics_path.open("a", encoding="utf-8") as log:
        task = bar.add_task("distil", total=total, completed=step)
        try:
            while step < total:
                indices = batch_indices(config, lengths, step, per_epoch)
                with autocast(device, config.precision):
                    loss, extra = method.loss(indices)
                scaler.scale(loss).backward()
                scaler.unscale_(optimiser)  # clip the true gradients
                grad_norm = torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
                scaler.step(optimiser)  # skipped (and the scale lowered) on inf/nan gradients
                scaler.update()
                scheduler.step()
                optimiser.zero_grad(set_to_none=True)
                step += 1
                last_loss = float(loss.detach())
                record = {
                    "step": step,
                    "epoch": (step - 1) // per_epoch,
                    "loss": round(last_loss, 6),
                    "grad_norm": round(float(grad_norm), 6),
                    "lr": scheduler.get_last_lr()[0],
                    **{k: round(v, 6) for k, v in extra.items()},
                }
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.update(task, completed=step)
                if step % config.checkpoint_every == 0 or step == total:
                    checkpoint(step)
                if stop_after is not None and step - first >= stop_after and step < total:
                    checkpoint(step)
                    raise JobInterrupted(
                        f"stopped after {step} of {total} steps (--stop-after); a checkpoint is "
                        f"in {folder}: run again with --resume to finish"
                    )
        except KeyboardInterrupt:
            checkpoint(step)
            raise JobInterrupted(
                f"interrupted at step {step} of {total}; a checkpoint is in {folder}: run again "
                "with --resume to finish"
            ) from None
    for module in modules.values():
        module.eval()
    return LoopResult(step, total, resumed_from, last_loss, time.monotonic() - started)
