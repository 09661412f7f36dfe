"""A teacher behind a model API (``api:openai/<model>``, ``api:anthropic/<model>``).

Only reached after the licence gate allowed the job (API terms usually need the org policy's
attestation or a recorded authorisation). Keys and endpoints come from the SDKs' own variables
(``OPENAI_API_KEY`` / ``OPENAI_BASE_URL``, ``ANTHROPIC_API_KEY`` / ``ANTHROPIC_BASE_URL``).
"""

from __future__ import annotations

from typing import Any

from distill.exceptions import DistillError


def http_client() -> Any:
    """The HTTP client the SDKs use (None: their default). Tests replace the network edge here.

    (The SDKs take their own bundled ``httpx2.Client``, hence ``Any``.)"""
    return None


def generate(target: str, prompts: list[str], max_tokens: int) -> list[str]:
    """One response per prompt from the API teacher ``target`` (OpenAI at temperature 0)."""
    provider, _, model = target.removeprefix("api:").partition("/")
    try:
        if provider == "openai":
            return _openai(model, prompts, max_tokens)
        if provider == "anthropic":
            return _anthropic(model, prompts, max_tokens)
    except Exception as exc:  # the SDKs' errors: missing key, HTTP status, connection
        if type(exc).__module__.split(".")[0] in {"openai", "anthropic", "httpx", "httpx2"}:
            raise DistillError(f"teacher {target}: {type(exc).__name__}: {exc}") from exc
        raise
    raise DistillError(
        f"teacher {target}: generating through the API is supported for openai and anthropic"
    )


def _openai(model: str, prompts: list[str], max_tokens: int) -> list[str]:
    from openai import OpenAI

    with OpenAI(http_client=http_client(), max_retries=2) as client:
        out = []
        for prompt in prompts:
            reply = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": prompt}],
                max_tokens=max_tokens,
                temperature=0,
            )
            out.append(reply.choices[0].message.content or "")
        return out


def _anthropic(model: str, prompts: list[str], max_tokens: int) -> list[str]:
    from anthropic import Anthropic

    with Anthropic(http_client=http_client(), max_retries=2) as client:
        out = []
        for prompt in prompts:
            reply = client.messages.create(
                model=model,
                max_tokens=max_tokens,
                messages=[{"role": "user", "content": prompt}],
            )
            out.append("".join(b.text for b in reply.content if b.type == "text"))
        return out
