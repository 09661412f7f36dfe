"""GSM8K-style numeric answers: the reference's and the one a reasoning trace ends with."""

from __future__ import annotations

import re

_NUMBER = r"-?\d[\d,]*(?:\.\d+)?"
_STATED = re.compile(rf"answer\s*(?:is|:)\s*\$?\s*({_NUMBER})", re.IGNORECASE)
_HASHES = re.compile(rf"####\s*\$?\s*({_NUMBER})")
_ANY = re.compile(_NUMBER)


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def reference_number(reference: str | None) -> float | None:
    """The numeric reference answer: after ``####`` (GSM8K), or the whole field (SVAMP's 51.0).

    Anything else (a worked solution without ``####``, LaTeX) has no checkable number: None.
    """
    if reference is None:
        return None
    found = _HASHES.search(reference)
    return _number(found.group(1) if found else reference.strip().rstrip("."))


def trace_number(trace: str) -> float | None:
    """The answer a trace ends with: the last "answer is N", else "#### N", else the last number."""
    for pattern in (_STATED, _HASHES, _ANY):
        found = pattern.findall(trace)
        if found:
            return _number(found[-1])
    return None


def checks_out(trace: str, reference: str | None, tolerance: float = 1e-6) -> bool | None:
    """True / False when the reference has a number to check against, None when it has not."""
    expected = reference_number(reference)
    if expected is None:
        return None
    got = trace_number(trace)
    return got is not None and abs(got - expected) <= tolerance
