"""Meet the obligations the licence gate attached to a job, or refuse the job.

:func:`precheck` runs before anything is loaded: a condition on the job itself (the student's
name) or a file the job must ship (a licence copy) that is missing stops the job there.
:func:`fulfil` writes the licence copies and the NOTICE file into the student folder and returns,
per obligation, how it was met; the model card states the rest (built-with, use restrictions,
attribution, conditions owed by whoever distributes the student).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from distill.exceptions import ObligationUnmet
from distill.spec import DataEntry, JobSpec
from policies.gate import Decision, DecisionObligation
from policies.licenses import Registry, shipped_registry
from policies.resolve import licence_files

STATED_IN_CARD = {
    "built_with",
    "attribution",
    "pass_through_use_restrictions",
    "mark_modifications",
    "content_licence",
    "share_alike",
}
OWED_BY_DISTRIBUTOR = {"user_cap", "attestation", "authorization"}
WRITTEN_AS_FILES = {"licence_copy", "notice"}
KNOWN = {"name_prefix"} | STATED_IN_CARD | OWED_BY_DISTRIBUTOR | WRITTEN_AS_FILES


@dataclass(frozen=True)
class Met:
    """How one obligation was met."""

    obligation: DecisionObligation
    how: str

    def record(self) -> dict[str, str]:
        return {**self.obligation.model_dump(mode="json"), "status": "met", "how": self.how}


def _cite(item: DecisionObligation) -> str:
    return f"{item.licence} {item.clause}"


def text_of(item: DecisionObligation, spec: JobSpec) -> str:
    """The obligation's text with ``<student name>`` filled in."""
    return item.text.replace("<student name>", spec.student_name)


def licence_source(licence: str, spec: JobSpec, registry: Registry) -> Path | None:
    """A copy of ``licence``'s text: the job's ``licence_texts`` entry, else a licence file in the
    teacher's or the student base's folder whose text the registry identifies as ``licence``."""
    for key, value in spec.licence_texts.items():
        found = registry.find(key)
        if found is not None and found.model.id == licence:
            path = Path(value)
            if not path.is_file():
                raise ObligationUnmet(f"licence_texts: {key}: {path} does not exist")
            named = [e.id for e in registry.identify_text(path.read_text(errors="replace"))]
            if named and licence not in named:
                raise ObligationUnmet(
                    f"licence_texts: {key}: {path} reads as {', '.join(named)}, not {licence}"
                )
            return path
    for folder in (Path(spec.teacher), Path(spec.student)):
        for path in licence_files(folder):
            text = path.read_text(encoding="utf-8", errors="replace")
            if licence in [e.id for e in registry.identify_text(text)]:
                return path
    return None


def _uri_suffices(item: DecisionObligation) -> bool:
    """Licences like CC BY 4.0 accept the URI of the licence instead of its text."""
    return "URI" in item.text or "hyperlink" in item.text


def _licence_uri(licence: str, registry: Registry) -> str:
    sources = registry.entries[licence].model.sources
    primary = [s.url for s in sources if s.kind == "primary"]
    return (primary or [s.url for s in sources])[0]


def data_entry(item: DecisionObligation, spec: JobSpec) -> DataEntry | None:
    """The data entry an obligation comes from (its role is ``data[i] ...``), if any."""
    match = re.match(r"data\[(\d+)\]", item.role)
    return spec.data[int(match.group(1))] if match else None


def _entries_under(licence: str, spec: JobSpec, registry: Registry) -> list[DataEntry]:
    """The job's data entries whose declared licence is ``licence``."""
    out = []
    for entry in spec.data:
        found = registry.find(entry.license)
        if found is not None and found.model.id == licence:
            out.append(entry)
    return out


def precheck(decision: Decision, spec: JobSpec, registry: Registry | None = None) -> None:
    """Refuse, before training, a job that could not meet its obligations."""
    registry = registry or shipped_registry()
    problems = []
    for item in decision.obligations:
        if item.kind not in KNOWN:
            problems.append(
                f"{_cite(item)} obliges '{item.kind}' ({item.text}), which distillguard cannot "
                "fulfil; the job refuses to run rather than ship a student that breaks it"
            )
        elif item.kind == "name_prefix" and not spec.student_name.startswith(item.text):
            problems.append(
                f'{_cite(item)} requires the student\'s name to start with "{item.text}" '
                f'(when {item.applies_when}); student_name is "{spec.student_name}": rename it, '
                f'e.g. "{item.text}-{spec.student_name}"'
            )
        elif item.kind == "attribution" and data_entry(item, spec) is not None:
            # the gate owes one attribution per licence; every entry under it needs its own
            for entry in _entries_under(item.licence, spec, registry):
                if not entry.attribution:
                    problems.append(
                        f"{_cite(item)} requires attribution ({item.text}) for data "
                        f"{entry.label}; give it as attribution: in that data entry"
                    )
        elif (
            item.kind == "licence_copy"
            and not _uri_suffices(item)
            and licence_source(item.licence, spec, registry) is None
        ):
            problems.append(
                f"{_cite(item)} requires a copy of {item.text} with the student; no licence file "
                f"in the teacher's or the student base's folder reads as {item.licence}: add one, "
                f"or name it in the job under licence_texts: {{{item.licence}: PATH}}"
            )
    if problems:
        raise ObligationUnmet("obligations not met:\n  " + "\n  ".join(problems))


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def fulfil(
    decision: Decision, spec: JobSpec, student_dir: Path, registry: Registry | None = None
) -> list[Met]:
    """Write licence copies and NOTICE into ``student_dir``; say how each obligation is met."""
    registry = registry or shipped_registry()
    met: list[Met] = []
    notices: list[str] = []
    for item in decision.obligations:
        if item.kind == "name_prefix":
            met.append(Met(item, f'student_name "{spec.student_name}" starts with "{item.text}"'))
        elif item.kind == "licence_copy":
            source = licence_source(item.licence, spec, registry)
            target = student_dir / "LICENSES" / f"{_safe(item.licence)}.txt"
            target.parent.mkdir(parents=True, exist_ok=True)
            if source is not None:
                target.write_bytes(source.read_bytes())
                how = f"copied {source} to {target.relative_to(student_dir)}"
            elif _uri_suffices(item):
                uri = _licence_uri(item.licence, registry)
                target.write_text(f"{item.licence}: {uri}\n", encoding="utf-8")
                how = f"its URI {uri} written to {target.relative_to(student_dir)}"
            else:  # precheck guarantees a source; the folder may have changed since
                raise ObligationUnmet(f"{_cite(item)}: the copy of {item.text} disappeared")
            met.append(Met(item, how))
        elif item.kind == "notice":
            notices.append(f"{item.licence} ({item.clause}): {text_of(item, spec)}")
            met.append(Met(item, "written to NOTICE"))
        elif item.kind == "attribution" and data_entry(item, spec) is not None:
            credits = "; ".join(
                f"{e.label}: {e.attribution}" for e in _entries_under(item.licence, spec, registry)
            )
            met.append(Met(item, f"stated in README.md: {credits}"))
        elif item.kind in STATED_IN_CARD:
            met.append(Met(item, "stated in README.md (model card)"))
        else:
            met.append(
                Met(item, "recorded in README.md and the provenance; owed by the distributor")
            )
    for folder in (Path(spec.teacher), Path(spec.student)):
        if folder.is_dir() and (folder / "NOTICE").is_file():
            notices.append(f"NOTICE of {folder.name}:\n{(folder / 'NOTICE').read_text()}")
    if notices:
        body = f"{spec.student_name}\n\n" + "\n\n".join(notices) + "\n"
        (student_dir / "NOTICE").write_text(body, encoding="utf-8")
    return met
