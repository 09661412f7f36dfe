"""The distillation job spec: the YAML a user writes to ask for a distillation.

```yaml
teacher: ./models/llama-3.1-8b-instruct     # a local model directory or api:<provider>/<model>
teacher_license: llama3.1                    # optional; must agree with what the files say
student: ./models/qwen2.5-0.5b               # a local model directory, or a config file
student_name: Llama-qwen-0.5b-distilled
method: output                               # logit | hidden_state | output | reasoning_trace
data:
  - path: ./data/prompts.jsonl
    license: cc-by-4.0
use: commercial                              # commercial | research | internal
output_dir: ./out/student
hyperparameters: {epochs: 1}                 # validated by the method's config
licence_texts: {Apache-2.0: ./LICENSE.txt}   # optional: licence copies an obligation requires
```

Relative paths are resolved against the spec file's folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from distill.exceptions import JobSpecError
from policies.exceptions import PolicyFileError
from policies.loader import LoadedPolicy, PolicyModel, load_policy, parse_yaml

Method = Literal["logit", "hidden_state", "output", "reasoning_trace"]


class DataEntry(PolicyModel):
    """One data set used for the job: a path or a name, with its licence or terms."""

    path: str | None = None
    name: str | None = None
    license: str = Field(min_length=1, description="registry id, Hub licence id or api:<provider>")
    attribution: str | None = Field(
        None, description="creators and copyright notice, for licences that require attribution"
    )

    @model_validator(mode="after")
    def _path_or_name(self) -> DataEntry:
        if not (self.path or self.name):
            raise ValueError("a data entry needs a path or a name")
        return self

    @property
    def label(self) -> str:
        """How the entry is named in decisions."""
        return self.name or self.path or "?"


class JobSpec(PolicyModel):
    """A distillation job as the user wrote it."""

    teacher: str = Field(min_length=1)
    teacher_license: str | None = None
    student: str = Field(min_length=1)
    student_license: str | None = None
    student_name: str = Field(min_length=1)
    method: Method
    data: list[DataEntry] = Field(default_factory=list)
    use: Literal["commercial", "research", "internal"]
    output_dir: str = Field(min_length=1)
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    licence_texts: dict[str, str] = Field(
        default_factory=dict,
        description="licence id -> a file with its text, for licence-copy obligations",
    )

    @field_validator("student")
    @classmethod
    def _student_is_local(cls, value: str) -> str:
        if value.startswith(("api:", "http://", "https://")):
            raise ValueError("the student must be a local model directory or a config file")
        return value


def _local(base: Path, value: str) -> str:
    if value.startswith(("api:", "http://", "https://")):
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path))


def load_job_spec(path: Path) -> LoadedPolicy[JobSpec]:
    """Load and validate a job spec; local paths become relative to the spec's folder.

    Raises :class:`JobSpecError` naming the file, the line and the field.
    """
    try:
        loaded = load_policy(path, JobSpec)
    except PolicyFileError as exc:
        raise JobSpecError(str(exc)) from exc
    spec = loaded.model
    base = path.parent
    teacher = _local(base, spec.teacher)
    student = _local(base, spec.student)
    for field_name, value in (("teacher", teacher), ("student", student)):
        if not value.startswith(("api:", "http")) and not Path(value).exists():
            _, lines = parse_yaml(path.read_text(encoding="utf-8"), str(path))
            line = lines.get((field_name,), 1)
            raise JobSpecError(f"{path}:{line}: field '{field_name}': {value} does not exist")
    data = [
        entry.model_copy(update={"path": _local(base, entry.path)}) if entry.path else entry
        for entry in spec.data
    ]
    resolved = spec.model_copy(
        update={
            "teacher": teacher,
            "student": student,
            "data": data,
            "output_dir": _local(base, spec.output_dir),
            "licence_texts": {k: _local(base, v) for k, v in spec.licence_texts.items()},
        }
    )
    return LoadedPolicy(model=resolved, path=path, sha256=loaded.sha256)
