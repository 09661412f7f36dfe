"""Every kind of policy file the package ships, and the model that validates each."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from policies.detection import DetectionPolicy
from policies.enforcement import EnforcementPolicy
from policies.exceptions import PolicyFileError
from policies.licenses import LicenceEntry, licenses_dir
from policies.loader import LoadedPolicy, load_policy, shipped_policy_path
from policies.org import OrgPolicy

KINDS: dict[str, type[BaseModel]] = {
    "licence": LicenceEntry,
    "org": OrgPolicy,
    "enforcement": EnforcementPolicy,
    "detection": DetectionPolicy,
}
"""Policy kind -> model. A new policy file kind is one line here and one shipped file."""

_SHIPPED_TOP_LEVEL = {
    "org": "org.yaml",
    "enforcement": "enforcement.yaml",
    "detection": "detection.yaml",
}


def kind_of(path: Path) -> str:
    """The kind of a policy file, from where it sits and what it is called."""
    if path.parent.name == "licenses":
        return "licence"
    for kind in KINDS:
        if path.stem.startswith(kind):
            return kind
    raise PolicyFileError(
        f"{path}: cannot tell which kind of policy this is ({', '.join(KINDS)}); pass --kind"
    )


def shipped_files() -> list[tuple[str, Path]]:
    """Every policy file shipped in the package, with its kind."""
    files = [("licence", p) for p in sorted(licenses_dir().glob("*.yaml"))]
    files += [(kind, shipped_policy_path(name)) for kind, name in _SHIPPED_TOP_LEVEL.items()]
    return files


def validate(path: Path, kind: str | None = None) -> LoadedPolicy[BaseModel]:
    """Load ``path`` with the model for its kind; raises ``PolicyFileError`` when invalid."""
    kind = kind or kind_of(path)
    if kind not in KINDS:
        raise PolicyFileError(f"unknown policy kind {kind!r}; known: {', '.join(KINDS)}")
    return load_policy(path, KINDS[kind])
