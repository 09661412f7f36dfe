"""Load a YAML policy file into a validated pydantic model, keeping line numbers for errors.

Every policy file (licences, the org policy, enforcement rules, detection settings, job specs) goes
through :func:`load_policy`. A failure names the file, the line and the field::

    policies/x.yaml:12: field 'weights.foo': extra inputs are not permitted

YAML is read with a safe loader that keeps the YAML 1.2 core reading of scalars: only
``true``/``false`` are booleans (``yes``, ``no``, ``on``, ``off`` stay strings, so ``no`` can be a
value) and dates stay strings for the model to parse. Duplicate keys are an error, not "last wins".
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from policies.exceptions import PolicyFileError

_PACKAGE_DIR = Path(__file__).resolve().parent

Loc = tuple[str | int, ...]


class PolicyModel(BaseModel):
    """Base for every policy model: unknown fields are refused and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class LoadedPolicy(Generic[M]):
    """A validated policy file, with the hash of its bytes for the decisions it feeds."""

    model: M
    path: Path
    sha256: str


class _Loader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 core booleans and no implicit timestamps."""


_DROPPED_TAGS = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp"}
_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def _key_lines(node: yaml.Node, path: Loc, lines: dict[Loc, int], where: str) -> None:
    """Record the 1-based line of every mapping key and sequence item below ``node``."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                field = ".".join(str(p) for p in (*path, key))
                raise PolicyFileError(f"{where}:{line}: field '{field}': duplicate key")
            seen.add(key)
            lines[(*path, key)] = line
            _key_lines(value_node, (*path, key), lines, where)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            _key_lines(item, (*path, index), lines, where)


def parse_yaml(text: str, where: str) -> tuple[Any, dict[Loc, int]]:
    """Parse one YAML document; return the data and the line of every key, by its path."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyFileError(f"{where}:1: the file is empty")
        lines: dict[Loc, int] = {(): node.start_mark.line + 1}
        _key_lines(node, (), lines, where)
        return loader.construct_document(node), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "not valid YAML"
        raise PolicyFileError(f"{where}:{line}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise PolicyFileError(f"{where}:1: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()


def _line_of(loc: Loc, lines: dict[Loc, int]) -> int:
    """The line of the deepest known prefix of ``loc`` (a missing field points at its parent)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return 1


def _field_path(loc: Loc, lines: dict[Loc, int], missing: bool) -> str:
    """The data path of an error, leaving out pydantic's union and validator tags.

    A part of ``loc`` is data when the file has it; a missing field is the one exception.
    """
    kept: list[str | int] = []
    for index, part in enumerate(loc):
        if (*kept, part) in lines or (missing and index == len(loc) - 1):
            kept.append(part)
    return ".".join(str(p) for p in kept) or "(top level)"


def validation_message(exc: ValidationError, where: str, lines: dict[Loc, int]) -> str:
    """One line per validation error: ``file:line: field 'a.b': message``."""
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        msg = error["msg"]
        msg = msg[0].lower() + msg[1:] if msg else msg
        field = _field_path(loc, lines, missing=error["type"] == "missing")
        out.append(f"{where}:{_line_of(loc, lines)}: field '{field}': {msg}")
    return "\n".join(out)


def load_policy(path: Path, model: type[M]) -> LoadedPolicy[M]:
    """Read ``path``, validate it against ``model`` and return it with its content hash.

    Raises :class:`PolicyFileError` naming the file, the line and the field.
    """
    where = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyFileError(f"{where}: cannot read the file: {exc.strerror}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyFileError(f"{where}:1: not UTF-8 text") from exc
    data, lines = parse_yaml(text, where)
    try:
        validated = model.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(validation_message(exc, where, lines)) from exc
    return LoadedPolicy(model=validated, path=path, sha256=hashlib.sha256(raw).hexdigest())


def re2_error(pattern: str) -> str | None:
    """Why DuckDB refuses the regular expression ``pattern``, or ``None`` if it compiles.

    Patterns that run in DuckDB are RE2, not Python ``re``: lookaround and backreferences pass
    ``re.compile`` and fail there, so a policy's patterns are checked by DuckDB itself.
    """
    import duckdb  # here, so that loading a policy without patterns does not import it

    with duckdb.connect() as con:
        try:
            con.execute("SELECT regexp_matches('', $pattern)", {"pattern": pattern})
        except duckdb.Error as exc:
            return str(exc).split("Error: ", 1)[-1].strip()
    return None


def shipped_policy_path(name: str) -> Path:
    """The path of a policy file shipped inside the ``policies`` package (e.g. ``org.yaml``)."""
    path = (_PACKAGE_DIR / name).resolve()
    if _PACKAGE_DIR not in path.parents or not path.is_file():
        raise PolicyFileError(f"no shipped policy file named {name!r} in {_PACKAGE_DIR}")
    return path
