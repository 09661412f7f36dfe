"""Prompt material: benign requests, math/code problems (with worked and short answers), test sets.

:func:`load_corpus` reads the real public sets described in ``../shared/data/prompts/SOURCES.md``;
:func:`ingest.simulator.builtin.builtin_corpus` makes a small templated stand-in when there is none.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.formats import allow_long_csv_fields
from ingest.simulator.exceptions import CorpusError

MAX_BENIGN_CHARS = 2000


@dataclass(frozen=True)
class Pool:
    """Parallel arrays of prompts and the two answers a model would give (short, with working)."""

    prompts: np.ndarray
    short: np.ndarray
    worked: np.ndarray
    is_code: np.ndarray

    def __len__(self) -> int:
        return len(self.prompts)

    @classmethod
    def of(cls, items: Sequence[tuple[str, str, str, bool]]) -> Pool:
        """Build from ``(prompt, short answer, worked answer, is_code)`` tuples."""
        prompts = np.empty(len(items), dtype=object)
        short = np.empty(len(items), dtype=object)
        worked = np.empty(len(items), dtype=object)
        for i, (p, s, w, _) in enumerate(items):
            prompts[i], short[i], worked[i] = p, s, w
        return cls(prompts, short, worked, np.array([c for *_, c in items], dtype=bool))

    def subset(self, index: np.ndarray) -> Pool:
        return Pool(self.prompts[index], self.short[index], self.worked[index], self.is_code[index])


@dataclass(frozen=True)
class Corpus:
    """Benign requests, a problem pool (rings, cohorts) and named test sets (benchmark runners)."""

    benign: Pool
    problems: Pool
    benchmarks: dict[str, Pool] = field(default_factory=dict)
    source: str = "built-in"


# --- answers ------------------------------------------------------------------------------------

_CALC = re.compile(r"<<[^>]*>>")
_OPENERS = ("Sure! ", "Here's a take on it. ", "Good question. ", "", "", "Happy to help. ")
_GENERIC = (
    "The short version is that it depends on your constraints, so start with the simplest option.",
    "A practical approach is to break the task into smaller steps and check each one.",
    "Most people find it easiest to begin with a rough draft and refine it afterwards.",
    "Keep the audience in mind: what do they already know, and what do they need from you?",
    "If you can share more detail, I can tailor this further.",
    "Here are a few points worth considering before you decide.",
    "One common pitfall is trying to do everything at once; prioritise the essentials.",
    "In summary, the key ideas are clarity, consistency and a bit of iteration.",
    "You could also look at examples from others who solved a similar problem.",
    "Finally, review the result with fresh eyes, or ask someone else to read it.",
)


def generic_answer(prompt: str, rng: random.Random) -> str:
    """A plausible short reply to a request we have no reference answer for."""
    body = " ".join(rng.sample(_GENERIC, rng.randrange(2, 6)))
    return f"{rng.choice(_OPENERS)}{body}"


def gsm8k_answers(answer: str) -> tuple[str, str]:
    """Short and worked answers from a GSM8K solution (``<<calc>>`` annotations removed)."""
    steps, _, final = _CALC.sub("", answer).rpartition("####")
    final = final.strip()
    return f"The answer is {final}.", f"{steps.strip()}\nTherefore, the answer is {final}."


def boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text`` (braces balanced), if any."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed{") - 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _code_answers(code: str, explanation: str) -> tuple[str, str]:
    block = f"```python\n{code.strip()}\n```"
    return block, f"{explanation}\n\n{block}\n\nThis runs in linear time in the size of the input."


# --- readers ------------------------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise CorpusError(f"{path}:{line_no}: expected a JSON object")
            yield line_no, record


def _field(path: Path, line_no: int, record: dict[str, Any], *keys: str | int) -> Any:
    value: Any = record
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            raise CorpusError(
                f"{path}:{line_no}: missing field {'.'.join(map(str, keys))}"
            ) from None
    return value


def _csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    allow_long_csv_fields()
    with path.open(encoding="utf-8", newline="") as handle:
        yield from enumerate(csv.DictReader(handle), 2)


def _benign(directory: Path, rng: random.Random) -> list[tuple[str, str, str, bool]]:
    prompts: list[tuple[str, str | None]] = []
    for name in ("self_instruct_seed_tasks.jsonl", "self_instruct_user_oriented.jsonl"):
        if (path := directory / name).is_file():
            for n, rec in _jsonl(path):
                instance = _field(path, n, rec, "instances", 0)
                text = str(_field(path, n, rec, "instruction"))
                extra = str(instance.get("input") or "")
                prompts.append((f"{text}\n\n{extra}" if extra else text, instance.get("output")))
    for name in ("mt_bench_questions.jsonl", "vicuna_bench_questions.jsonl"):
        if (path := directory / name).is_file():
            prompts += [(str(_field(path, n, r, "turns", 0)), None) for n, r in _jsonl(path)]
    if (path := directory / "arena_hard_v0.1_questions.jsonl").is_file():
        prompts += [(str(_field(path, n, r, "turns", 0, "content")), None) for n, r in _jsonl(path)]
    if (path := directory / "ifeval_input_data.jsonl").is_file():
        prompts += [(str(_field(path, n, r, "prompt")), None) for n, r in _jsonl(path)]
    if (path := directory / "awesome_chatgpt_prompts.csv").is_file():
        for n, row in _csv(path):
            if "prompt" not in row or "type" not in row:
                raise CorpusError(f"{path}:{n}: expected columns 'prompt' and 'type'")
            if row["type"] == "TEXT" and row["prompt"]:
                prompts.append((row["prompt"][:MAX_BENIGN_CHARS], None))
    if (path := directory / "xstest_prompts.csv").is_file():
        for n, row in _csv(path):
            if "prompt" not in row or "label" not in row:
                raise CorpusError(f"{path}:{n}: expected columns 'prompt' and 'label'")
            if row["label"] == "safe":
                prompts.append((row["prompt"], None))
    items = []
    for text, reference in prompts:
        text = text.strip()
        if text:
            answer = str(reference).strip() if reference else generic_answer(text, rng)
            items.append((text, answer, answer, False))
    return items


def _math(directory: Path, names: Sequence[str]) -> dict[str, list[tuple[str, str, str, bool]]]:
    sets: dict[str, list[tuple[str, str, str, bool]]] = {}
    for name in names:
        path = directory / name
        if not path.is_file():
            continue
        items: list[tuple[str, str, str, bool]] = []
        if name.startswith("gsm8k"):
            for n, rec in _jsonl(path):
                short, worked = gsm8k_answers(str(_field(path, n, rec, "answer")))
                items.append((str(_field(path, n, rec, "question")), short, worked, False))
        elif name.startswith("math500"):
            for n, rec in _jsonl(path):
                solution = str(_field(path, n, rec, "answer"))
                final = boxed(solution) or solution.strip().splitlines()[-1]
                items.append(
                    (
                        str(_field(path, n, rec, "question")),
                        f"$\\boxed{{{final}}}$",
                        solution,
                        False,
                    )
                )
        elif name == "svamp.json":
            try:
                records = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
            for i, rec in enumerate(records):
                body, question = _field(path, i, rec, "Body"), _field(path, i, rec, "Question")
                value = _number(float(_field(path, i, rec, "Answer")))
                equation = str(_field(path, i, rec, "Equation")).strip()
                worked = (
                    f"We need {equation.strip('() ')}.\nThat gives {value}.\nThe answer is {value}."
                )
                items.append((f"{body.strip()} {question.strip()}", value, worked, False))
        elif name == "humaneval.jsonl":
            for n, rec in _jsonl(path):
                stub = str(_field(path, n, rec, "prompt"))
                code = stub + str(_field(path, n, rec, "canonical_solution"))
                short, worked = _code_answers(code, "Let's implement it step by step.")
                items.append((stub, short, worked, True))
        elif name == "mbpp.jsonl":
            for n, rec in _jsonl(path):
                tests = _field(path, n, rec, "test_list")
                text = str(_field(path, n, rec, "text"))
                prompt = f"{text} Your code should pass this test:\n{tests[0]}" if tests else text
                short, worked = _code_answers(
                    str(_field(path, n, rec, "code")).replace("\r\n", "\n"),
                    "First, think about the input and the expected output; then write it.",
                )
                items.append((prompt, short, worked, True))
        sets[name.split(".")[0]] = items
    return sets


PROBLEM_FILES = ("gsm8k_train.jsonl", "math500_test.jsonl", "svamp.json", "mbpp.jsonl",
                 "humaneval.jsonl")  # fmt: skip
BENCHMARK_FILES = ("gsm8k_test.jsonl", "math500_test.jsonl", "svamp.json", "humaneval.jsonl",
                   "mbpp.jsonl")  # fmt: skip


def load_corpus(directory: Path, rng: np.random.Generator) -> Corpus:
    """Read the real public prompt sets in ``directory`` (the files named in its SOURCES.md)."""
    if not directory.is_dir():
        raise CorpusError(f"corpus folder {directory} does not exist or is not a folder")
    try:
        benign = _benign(directory, random.Random(int(rng.integers(2**62))))
        problems = _math(directory, PROBLEM_FILES)
        benchmarks = _math(directory, BENCHMARK_FILES)
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(f"cannot read the corpus in {directory}: {exc}") from None
    pool = [item for items in problems.values() for item in items]
    if not benign or not pool:
        missing = "benign prompt files" if not benign else "math/code problem files"
        raise CorpusError(
            f"{directory} has no {missing}; expected files such as "
            f"vicuna_bench_questions.jsonl, gsm8k_train.jsonl (see SOURCES.md there)"
        )
    return Corpus(
        benign=Pool.of(benign),
        problems=Pool.of(pool),
        benchmarks={name: Pool.of(items) for name, items in benchmarks.items() if items},
        source=str(directory),
    )
