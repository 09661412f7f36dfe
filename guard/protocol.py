"""What the gateway needs to know about the two client protocols: reading requests, assembling
responses (plain and streamed) for the call log, and writing errors in each protocol's format."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Proto = Literal["openai", "anthropic"]

OPENAI_PATH = "/v1/chat/completions"
ANTHROPIC_PATH = "/v1/messages"
MODELS_PATH = "/v1/models"

_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", "account_suspended"),
    404: ("invalid_request_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "request_too_large"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
    502: ("api_error", "upstream_error"),
    503: ("api_error", "call_log_unavailable"),
    504: ("api_error", "upstream_timeout"),
}
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
}


def error_body(proto: Proto, status: int, message: str) -> bytes:
    """An error object in the client's protocol."""
    if proto == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        return orjson.dumps({"type": "error", "error": {"type": kind, "message": message}})
    kind, code = _OPENAI_ERRORS.get(status, ("api_error", None))
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


def stream_error_event(proto: Proto, message: str) -> bytes:
    """An error event to end a stream that failed after its headers were sent."""
    if proto == "anthropic":
        body = orjson.dumps({"type": "error", "error": {"type": "api_error", "message": message}})
        return b"event: error\ndata: " + body + b"\n\n"
    return b"data: " + error_body("openai", 502, message) + b"\n\n"


class BadRequest(ValueError):
    """The body is not a valid request of its protocol; the message says why."""


def _text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif block.get("type") == "tool_result":
                    parts.append(_text(block.get("content")))
        return "\n".join(p for p in parts if p)
    return ""


@dataclass
class Request:
    """The parts of a request the gateway reads: for the log, limits and enforcement."""

    body: dict[str, Any]
    model: str
    prompt: str
    system_prompt: str | None
    stream: bool


def parse_request(proto: Proto, raw: bytes) -> Request:
    """Read and check a chat request; :class:`BadRequest` names what is wrong."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a non-empty string")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' is required and must be a non-empty array")
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        raise BadRequest("every item of 'messages' must be an object with a string 'role'")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise BadRequest("'stream' must be a boolean")
    prompt = "\n".join(_text(m.get("content")) for m in messages if m["role"] == "user")
    if proto == "anthropic":
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise BadRequest("'max_tokens' is required and must be a positive integer")
        system = _text(body.get("system")) or None
    else:
        system = "\n".join(
            _text(m.get("content")) for m in messages if m["role"] in ("system", "developer")
        )
    return Request(body, model, prompt, system or None, stream)


@dataclass
class Outcome:
    """What the call log keeps of a response."""

    text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


def read_answer(proto: Proto, body: dict[str, Any]) -> Outcome:
    """The text and token counts of a non-streamed response (parsed); an answer that is not of
    the protocol's shape raises (TypeError, KeyError, ...)."""
    raw_usage = body.get("usage")
    usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
    if proto == "anthropic":
        text = _text(body.get("content"))
        return Outcome(text, _count(usage.get("input_tokens")), _count(usage.get("output_tokens")))
    choices = body.get("choices") or [{}]
    first = choices[0] if isinstance(choices[0], dict) else {}
    message = first.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return Outcome(
        content if isinstance(content, str) else "",
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
    )


def _count(value: Any) -> int | None:
    """A token count from the upstream, or None: the call log's columns are integers, so a string,
    a bool or a float sent by a misbehaving upstream must not reach the journal (it would stop the
    journal from being sealed into a Parquet segment)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass
class StreamReader:
    """Assembles a streamed response from its server-sent events, one event at a time."""

    proto: Proto
    parts: list[str] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)

    def feed(self, data: dict[str, Any]) -> None:
        """Take one event's parsed ``data``."""
        out = self.outcome
        if self.proto == "openai":
            for choice in data.get("choices") or ():
                if choice.get("index", 0) == 0:
                    content = (choice.get("delta") or {}).get("content")
                    if isinstance(content, str):
                        self.parts.append(content)
            usage = data.get("usage")
            if isinstance(usage, dict):
                out.prompt_tokens = _count(usage.get("prompt_tokens"))
                out.completion_tokens = _count(usage.get("completion_tokens"))
            return
        kind = data.get("type")
        if kind == "content_block_delta":
            delta = data.get("delta") or {}
            text = delta.get("text")
            if delta.get("type") == "text_delta" and isinstance(text, str):
                self.parts.append(text)
        elif kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            out.prompt_tokens = _count(usage.get("input_tokens"))
            out.completion_tokens = _count(usage.get("output_tokens"))
        elif kind == "message_delta":
            usage = data.get("usage") or {}
            if "output_tokens" in usage:
                out.completion_tokens = _count(usage["output_tokens"])
            if usage.get("input_tokens") is not None:
                out.prompt_tokens = _count(usage["input_tokens"])

    def result(self) -> Outcome:
        """The assembled outcome."""
        self.outcome.text = "".join(self.parts)
        return self.outcome


def split_events(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete events (ending in a blank line) at the head of ``buffer``."""
    events: list[bytes] = []
    start = 0
    while True:
        end = buffer.find(b"\n\n", start)
        if end < 0:
            break
        events.append(bytes(buffer[start : end + 2]))
        start = end + 2
    if start:
        del buffer[:start]
    return events


def event_data(event: bytes) -> bytes | None:
    """The ``data:`` payload of one server-sent event, or None."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            return line[5:].strip()
    return None
