"""What a method's trainer is given and what the job asks of it (see ``<method>_trainer.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from distill.data import Example
from distill.loop import Method
from distill.spec import JobSpec


@dataclass
class JobContext:
    """A job as a trainer sees it: the resolved spec, the data split, the device, its folder."""

    spec: JobSpec
    train: list[Example]
    eval: list[Example]
    device: torch.device
    run_dir: Path
    report: dict[str, Any] = field(default_factory=dict)
    """What the method reports beyond metrics (e.g. kept/rejected trace counts)."""

    @property
    def teacher(self) -> Path:
        return Path(self.spec.teacher)

    @property
    def student(self) -> Path:
        return Path(self.spec.student)


class Trainer(Method, Protocol):
    """A method's trainer: built from a :class:`JobContext` and its config."""

    def prepare(self) -> None:
        """Load the models and data (and build caches); called after the gate allowed the job."""
        ...

    def evaluate(self) -> dict[str, float]:
        """Student against teacher on the held-out examples."""
        ...

    def save_student(self, directory: Path) -> None:
        """Write the trained student (weights, config, tokenizer) into ``directory``."""
        ...
