"""The licence registry: one validated YAML file per licence or terms of service.

Each entry quotes the clauses that answer the gate's questions, and its machine-readable answers
cite those clauses by id. Where the text says nothing on a question, the answer is ``silent`` and a
``silent_on`` entry says so; the gate then applies the organisation's policy on silence.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from policies.exceptions import PolicyFileError
from policies.loader import LoadedPolicy, PolicyModel, load_policy

Training = Literal["yes", "no", "same_family", "not_competing", "with_authorization", "silent"]
YesNoSilent = Literal["yes", "no", "silent"]
ObligationKind = Literal[
    "licence_copy",
    "notice",
    "attribution",
    "name_prefix",
    "built_with",
    "pass_through_use_restrictions",
    "mark_modifications",
    "share_alike",
]
Topic = Literal["train_other_models", "commercial", "student_is_derivative"]

_ID = r"^(?:[A-Za-z0-9.\-+]+|LicenseRef-[A-Za-z0-9.\-]+)$"


class Clause(PolicyModel):
    """A clause quoted verbatim from the licence text."""

    id: str = Field(min_length=1)
    text: str = Field(min_length=10)


class Source(PolicyModel):
    """Where the quoted text was read. ``kind`` says whether it is the licensor's own copy."""

    url: str = Field(pattern=r"^https?://")
    kind: Literal["primary", "secondary"]
    note: str = ""


class TrainingRule(PolicyModel):
    """May the licensed material (weights, outputs, data) be used to train another model?"""

    value: Training
    same_family: list[str] = Field(
        default_factory=list,
        description="licence ids whose models count as the family (value same_family)",
    )
    clauses: list[str] = Field(default_factory=list)


class CommercialRule(PolicyModel):
    """May the result be used commercially, and up to how many monthly active users?"""

    value: YesNoSilent
    monthly_active_user_cap: int | None = Field(default=None, gt=0)
    clauses: list[str] = Field(default_factory=list)


class DerivativeRule(PolicyModel):
    """Does the licence's own definition make a distilled student a derivative it governs?"""

    value: YesNoSilent
    clauses: list[str] = Field(default_factory=list)


class Obligation(PolicyModel):
    """Something the student (or whoever distributes it) owes under this licence."""

    kind: ObligationKind
    scope: Literal["material", "trained_model"] = Field(
        default="material",
        description="material: owed for copies or derivatives of the licensed material; "
        "trained_model: owed by any model trained with the material or its outputs",
    )
    text: str = Field(default="", description="the exact string owed: notice, prefix, display")
    applies_when: str = Field(min_length=3, description="the licence's own trigger, quoted")
    clauses: list[str] = Field(min_length=1)


class Silence(PolicyModel):
    """A question the licence text does not answer."""

    topic: Topic
    note: str = Field(min_length=10)


class LicenceEntry(PolicyModel):
    """One licence or terms of service, quoted, with machine-readable answers citing clauses."""

    id: str = Field(pattern=_ID)
    name: str
    kind: Literal["model_licence", "content_licence", "software_licence", "api_terms"]
    hf_ids: list[str] = Field(default_factory=list)
    aliases: list[str] = Field(default_factory=list)
    api_provider: str | None = None
    model_patterns: list[str] = Field(
        default_factory=list, description="Hub model ids (fnmatch) released under this licence"
    )
    sources: list[Source] = Field(min_length=1)
    clauses: list[Clause] = Field(min_length=1)
    fingerprints: list[str] = Field(
        default_factory=list, description="phrases that identify the licence text, all required"
    )
    train_other_models: TrainingRule
    commercial: CommercialRule
    student_is_derivative: DerivativeRule
    obligations: list[Obligation] = Field(default_factory=list)
    silent_on: list[Silence] = Field(default_factory=list)
    notes: str = ""

    @model_validator(mode="after")
    def _answers_cite_quoted_clauses(self) -> LicenceEntry:
        known = {c.id for c in self.clauses}
        if len(known) != len(self.clauses):
            raise ValueError("two clauses share an id")
        cited = [
            *self.train_other_models.clauses,
            *self.commercial.clauses,
            *self.student_is_derivative.clauses,
            *(cid for o in self.obligations for cid in o.clauses),
        ]
        missing = sorted(set(cited) - known)
        if missing:
            raise ValueError(f"cites clause ids that are not quoted: {missing}")
        silent = {s.topic for s in self.silent_on}
        answers: dict[Topic, str] = {
            "train_other_models": self.train_other_models.value,
            "commercial": self.commercial.value,
            "student_is_derivative": self.student_is_derivative.value,
        }
        for topic, value in answers.items():
            if (value == "silent") != (topic in silent):
                raise ValueError(
                    f"'{topic}' is {value!r} but silent_on "
                    f"{'lacks' if value == 'silent' else 'lists'} it"
                )
            rule_clauses = getattr(self, topic).clauses
            if value != "silent" and not rule_clauses:
                raise ValueError(f"'{topic}' answers {value!r} without citing a clause")
        if (
            self.train_other_models.value == "same_family"
            and not self.train_other_models.same_family
        ):
            raise ValueError("train_other_models is same_family but names no family licence ids")
        return self

    def clause(self, clause_id: str) -> Clause:
        """The quoted clause with this id."""
        return next(c for c in self.clauses if c.id == clause_id)

    def silence(self, topic: Topic) -> Silence:
        """The note on a question the text does not answer."""
        return next(s for s in self.silent_on if s.topic == topic)


def normalise(text: str) -> str:
    """Lower-case words only: quotes, punctuation, markdown and line breaks do not matter."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.findall(r"[a-z0-9]+", text))


@dataclass(frozen=True)
class Registry:
    """Every licence entry, indexed by id, Hub licence id, alias and API provider."""

    entries: dict[str, LoadedPolicy[LicenceEntry]]
    _lookup: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, directory: Path) -> Registry:
        """Load ``directory/*.yaml``; ids, Hub ids and aliases must be unique across files."""
        entries: dict[str, LoadedPolicy[LicenceEntry]] = {}
        lookup: dict[str, str] = {}
        owner: dict[str, Path] = {}
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise PolicyFileError(f"{directory}: no licence files (*.yaml) in the registry")
        for path in files:
            loaded = load_policy(path, LicenceEntry)
            entry = loaded.model
            keys = [entry.id, *entry.hf_ids, *entry.aliases]
            if entry.api_provider:
                keys.append(f"api:{entry.api_provider}")
            for key in {k.lower() for k in keys}:
                if key in lookup:
                    raise PolicyFileError(
                        f"{path}: '{key}' already names {lookup[key]} in {owner[key]}"
                    )
                lookup[key] = entry.id
                owner[key] = path
            entries[entry.id] = loaded
        return cls(entries=entries, _lookup=lookup)

    def find(self, name: str) -> LoadedPolicy[LicenceEntry] | None:
        """The entry an id, Hub licence id, alias or ``api:<provider>`` names, if any."""
        key = name.strip().lower()
        if key.startswith("api:"):
            key = key.split("/", 1)[0]
        entry_id = self._lookup.get(key)
        return self.entries[entry_id] if entry_id else None

    def __iter__(self) -> Iterator[LoadedPolicy[LicenceEntry]]:
        return iter(self.entries[k] for k in sorted(self.entries))

    def identify_text(self, text: str) -> list[LicenceEntry]:
        """Entries whose fingerprint phrases all occur, as whole words, in the normalised text."""
        body = f" {normalise(text)} "
        return [
            loaded.model
            for loaded in self
            if loaded.model.fingerprints
            and all(f" {normalise(fp)} " in body for fp in loaded.model.fingerprints)
        ]

    def for_model(self, model_id: str) -> list[LicenceEntry]:
        """Entries whose ``model_patterns`` match a Hub model id (a model may carry several)."""
        lowered = model_id.lower()
        return [
            loaded.model
            for loaded in self
            if any(fnmatchcase(lowered, p.lower()) for p in loaded.model.model_patterns)
        ]


def licenses_dir() -> Path:
    """The registry shipped inside the package."""
    return Path(__file__).resolve().parent / "licenses"


@cache
def shipped_registry() -> Registry:
    """The shipped registry, loaded once per process."""
    return Registry.load(licenses_dir())
