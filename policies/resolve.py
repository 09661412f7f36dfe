"""Find which registry licences govern a model: from its files, its lineage, or its API terms.

A local Hugging Face model directory is read, never loaded: the model card's YAML front matter
(``license``, ``license_name``, ``license_link``, ``base_model``) and any licence file, identified
by its normalised text against the registry's fingerprints (the file name only selects candidates).
A job's own declaration must agree with what the files say; a mismatch raises
:class:`LicenceMismatch` naming both. Anything unknown or ambiguous is returned as a problem, which
the gate turns into a refusal that says how to resolve it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from policies.exceptions import LicenceMismatch
from policies.licenses import LicenceEntry, Registry
from policies.loader import LoadedPolicy
from policies.org import OrgPolicy

_MAX_LICENCE_FILE = 1_000_000
_PROVIDERS = ("openai", "anthropic", "google")


@dataclass(frozen=True)
class Evidence:
    """One observation that tied a model to a licence."""

    source: str
    licence: str


@dataclass
class Resolution:
    """The licences that govern one model, how they were found, and what could not be settled."""

    subject: str
    licences: list[str] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    from_scratch: bool = False

    def add(self, licence: str, source: str) -> None:
        """Record a licence (once) and the observation behind it."""
        if licence not in self.licences:
            self.licences.append(licence)
        self.evidence.append(Evidence(source=source, licence=licence))


def front_matter(readme: Path) -> dict[str, Any]:
    """The YAML front matter of a model card (``---`` ... ``---``), or an empty mapping."""
    text = readme.read_text(encoding="utf-8-sig", errors="replace").replace("\r\n", "\n")
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        raise ValueError(f"{readme}: front matter opened with '---' is never closed")
    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError as exc:
        raise ValueError(f"{readme}: front matter is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{readme}: front matter is not a mapping")
    return data


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _from_card(card: dict[str, Any], registry: Registry, found: Resolution, where: str) -> None:
    """The licence the card's ``license`` / ``license_name`` / ``license_link`` names."""
    declared = card.get("license")
    for name in _as_list(declared):
        if name.lower() != "other":
            unknown = (
                f"{where}: model card says license: {name}, which the licence registry does not "
                "know; add an entry under policies/licenses/"
            )
            _add_known(found, registry, name, f"{where} front matter license: {name}", unknown)
            continue
        license_name = card.get("license_name")
        entry = registry.find(str(license_name)) if license_name else None
        if entry is None and card.get("license_link"):
            entry = _by_link(str(card["license_link"]), registry)
        if entry is not None:
            how = f"license_name: {license_name}" if license_name else "license_link"
            found.add(entry.model.id, f"{where} front matter license: other, {how}")


def _add_known(found: Resolution, registry: Registry, name: str, source: str, unknown: str) -> None:
    """Add the licence ``name`` names, or record ``unknown`` as a problem."""
    entry = registry.find(name)
    if entry is None:
        found.problems.append(unknown)
    else:
        found.add(entry.model.id, source)


def _by_link(link: str, registry: Registry) -> LoadedPolicy[LicenceEntry] | None:
    wanted = link.rstrip("/").lower()
    for loaded in registry:
        if any(s.url.rstrip("/").lower() == wanted for s in loaded.model.sources):
            return loaded
    return None


def licence_files(directory: Path) -> list[Path]:
    """The licence files of a model folder (``*licen*``, ``COPYING*``, up to 1 MB), by name."""
    if not directory.is_dir():
        return []
    return sorted(
        p
        for p in directory.iterdir()
        if p.is_file()
        and ("licen" in p.name.lower() or p.name.lower().startswith("copying"))
        and p.stat().st_size <= _MAX_LICENCE_FILE
    )


def _from_texts(directory: Path, registry: Registry, found: Resolution) -> list[LicenceEntry]:
    """Entries identified from licence files' text; an ambiguous file is a problem."""
    identified: list[LicenceEntry] = []
    for path in licence_files(directory):
        matches = registry.identify_text(path.read_text(encoding="utf-8", errors="replace"))
        if len(matches) > 1:
            names = ", ".join(m.id for m in matches)
            found.problems.append(
                f"{path}: the text matches several licences ({names}); the licence is ambiguous"
            )
        elif matches:
            identified.append(matches[0])
            found.evidence.append(Evidence(f"{path.name} text", matches[0].id))
        else:
            found.evidence.append(Evidence(f"{path.name} text not recognised", "unknown"))
    return identified


def _lineage(
    card: dict[str, Any], registry: Registry, org: OrgPolicy, found: Resolution, where: str
) -> None:
    for base in _as_list(card.get("base_model")):
        licences = [e.id for e in registry.for_model(base)]
        if base in org.known_models:
            licences.append(org.known_models[base])
        if not licences:
            found.problems.append(
                f"{where}: base_model {base} has no known licence; add it to known_models in "
                "the org policy or to a registry entry's model_patterns"
            )
        for licence in licences:
            found.add(licence, f"{where} base_model lineage: {base}")


def resolve_directory(directory: Path, registry: Registry, org: OrgPolicy) -> Resolution:
    """The licences of a local Hugging Face model directory, read from its card and files."""
    found = Resolution(subject=str(directory))
    readme = directory / "README.md"
    card: dict[str, Any] = {}
    if readme.is_file():
        try:
            card = front_matter(readme)
        except ValueError as exc:
            found.problems.append(str(exc))
    _from_card(card, registry, found, "README.md")
    card_ids = list(found.licences)
    text_entries = _from_texts(directory, registry, found)
    text_ids = sorted({e.id for e in text_entries})
    if card_ids and text_ids and not set(text_ids) & set(card_ids):
        found.problems.append(
            f"{directory}: the model card says {', '.join(card_ids)} but the licence file's text "
            f"is {', '.join(text_ids)}; the licence is ambiguous until they agree"
        )
    for entry in text_entries:
        if entry.id not in found.licences:
            found.licences.append(entry.id)
    _lineage(card, registry, org, found, "README.md")
    return found


def resolve_api(target: str, registry: Registry) -> Resolution:
    """The terms of an ``api:<provider>/<model>`` teacher."""
    found = Resolution(subject=target)
    provider, _, model = target.removeprefix("api:").partition("/")
    if provider not in _PROVIDERS or not model:
        found.problems.append(
            f"{target}: API teachers are written api:<provider>/<model> with provider one of "
            f"{', '.join(_PROVIDERS)}; for another OpenAI-compatible endpoint give its URL and "
            "declare its terms in teacher_license"
        )
        return found
    entry = registry.find(f"api:{provider}")
    if entry is None:
        found.problems.append(f"{target}: no terms of service for {provider} in the registry")
    else:
        found.add(entry.model.id, f"API provider {provider}")
    return found


def resolve_data(label: str, licence: str, registry: Registry) -> Resolution:
    """The licence or terms a data entry declares (a registry id, Hub id or ``api:<provider>``)."""
    found = Resolution(subject=label)
    unknown = (
        f"data licence {licence} is not in the licence registry; the data's terms are unknown "
        "(use a registry id, Hub licence id or api:<provider>)"
    )
    _add_known(found, registry, licence, f"data entry license: {licence}", unknown)
    return found


def resolve_model(
    target: str,
    declared: str | None,
    registry: Registry,
    org: OrgPolicy,
    role: str,
) -> Resolution:
    """Resolve a teacher or student (directory, ``api:...`` or URL) and check the declaration.

    A student given as a file (a model config) is trained from scratch and has no base licence.
    """
    path = Path(target)
    if role == "student" and path.is_file():
        if declared is not None:
            raise LicenceMismatch(
                f"student_license declares {declared} but the student {target} is a config file "
                "(trained from scratch), which has no base model licence"
            )
        return Resolution(subject=target, from_scratch=True)
    if target.startswith("api:"):
        found = resolve_api(target, registry)
    elif target.startswith(("http://", "https://")):
        found = Resolution(subject=target)
    elif path.is_dir():
        found = resolve_directory(path, registry, org)
    else:
        found = Resolution(subject=target, problems=[f"{target}: not a model directory"])
    if declared is not None:
        _check_declaration(found, declared, target, registry, org, role)
    if not found.licences and not found.problems:
        found.problems.append(_unknown(target, role))
    return found


def _unknown(target: str, role: str) -> str:
    if target.startswith(("http://", "https://")):
        return (
            f"{target}: an OpenAI-compatible endpoint has no licence files to read; declare the "
            f"terms it is offered under in {role}_license"
        )
    return (
        f"{target}: neither the model card nor a licence file names a licence the registry "
        "knows; the licence is unknown. Add the licence file the model was released with, or a "
        "registry entry for it"
    )


def _check_declaration(
    found: Resolution, declared: str, target: str, registry: Registry, org: OrgPolicy, role: str
) -> None:
    entry = registry.find(declared)
    if entry is None:
        found.problems.append(
            f"{role}_license: {declared} is not in the licence registry; use a registry id or "
            "Hub licence id (distillguard policies licenses lists them)"
        )
        return
    detected = [e for e in found.evidence if e.licence != "unknown"]
    if detected:
        if entry.model.id not in found.licences:
            seen = "; ".join(f"{e.licence} ({e.source})" for e in detected)
            raise LicenceMismatch(
                f"{role}_license declares {entry.model.id} but {target} says {seen}; "
                "correct the declaration or the model files"
            )
        return
    if target.startswith(("http://", "https://")) or org.trust_declaration_without_evidence:
        found.add(entry.model.id, f"{role}_license declaration")
    else:
        found.problems.append(
            f"{role}_license declares {entry.model.id} but nothing in {target} confirms it; add "
            "the model card or licence file, or set trust_declaration_without_evidence in the "
            "org policy"
        )
