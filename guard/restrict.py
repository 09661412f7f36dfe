"""The ``restricted`` account state: reasoning withheld and output length capped.

Reasoning reaches a client three ways, and each is removed: a ``<think>…</think>`` section in the
text (stripped, also when a tag is split across stream chunks), OpenAI-style ``reasoning_content`` /
``reasoning`` fields (dropped), and Anthropic ``thinking`` blocks (not requested upstream; any that
arrive anyway are emptied). ``max_tokens`` (and OpenAI's ``max_completion_tokens``) is capped.
"""

from __future__ import annotations

from typing import Any

from guard.protocol import Proto

OPEN, CLOSE = "<think>", "</think>"
REASONING_FIELDS = ("reasoning_content", "reasoning")


def _partial(text: str, tag: str) -> int:
    """Length of the longest suffix of ``text`` that is a proper prefix of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


class ThinkFilter:
    """Removes ``<think>…</think>`` sections from text fed in arbitrary pieces."""

    def __init__(self) -> None:
        self.inside = False
        self.pending = ""

    def feed(self, piece: str) -> str:
        """The part of ``piece`` that can be shown now."""
        text, self.pending = self.pending + piece, ""
        out: list[str] = []
        i = 0
        while i < len(text):
            tag = CLOSE if self.inside else OPEN
            j = text.find(tag, i)
            if j < 0:
                keep = _partial(text[i:], tag)
                if not self.inside:
                    out.append(text[i : len(text) - keep])
                self.pending = text[len(text) - keep :] if keep else ""
                break
            if not self.inside:
                out.append(text[i:j])
            i = j + len(tag)
            self.inside = not self.inside
        return "".join(out)

    def flush(self) -> str:
        """Text held back at the end (a dangling partial tag outside a section)."""
        rest, self.pending = ("" if self.inside else self.pending), ""
        return rest


def strip_reasoning(text: str) -> str:
    """``text`` without its reasoning sections."""
    f = ThinkFilter()
    return f.feed(text) + f.flush()


def restrict_request(proto: Proto, body: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    """The request as sent upstream for a restricted account."""
    body = dict(body)
    for name in ("max_tokens", "max_completion_tokens"):
        value = body.get(name)
        if isinstance(value, int) and value > max_tokens:
            body[name] = max_tokens
    if proto == "anthropic":
        body.pop("thinking", None)
    elif "max_tokens" not in body and "max_completion_tokens" not in body:
        body["max_tokens"] = max_tokens
    body.pop("reasoning_effort", None)
    return body


def restrict_response(proto: Proto, body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed response with its reasoning removed."""
    if proto == "anthropic":
        blocks = []
        for block in body.get("content") or ():
            if isinstance(block, dict) and block.get("type") in ("thinking", "redacted_thinking"):
                continue
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                block = {**block, "text": strip_reasoning(block["text"])}
            blocks.append(block)
        return {**body, "content": blocks}
    choices = []
    for choice in body.get("choices") or ():
        message = dict(choice.get("message") or {})
        for name in REASONING_FIELDS:
            message.pop(name, None)
        if isinstance(message.get("content"), str):
            message["content"] = strip_reasoning(message["content"])
        choices.append({**choice, "message": message})
    return {**body, "choices": choices}


class StreamRestrictor:
    """Rewrites a stream's events (parsed ``data``) so that no reasoning gets through."""

    def __init__(self, proto: Proto) -> None:
        self.proto = proto
        self.filters: dict[int, ThinkFilter] = {}
        self.thinking_blocks: set[int] = set()

    def _filter(self, index: int) -> ThinkFilter:
        return self.filters.setdefault(index, ThinkFilter())

    def rewrite(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """The events to send instead of ``data`` (none, itself, or it with text held back)."""
        if self.proto == "openai":
            for choice in data.get("choices") or ():
                delta = choice.get("delta")
                if not isinstance(delta, dict):
                    continue
                for name in REASONING_FIELDS:
                    delta.pop(name, None)
                filt = self._filter(choice.get("index", 0))
                if isinstance(delta.get("content"), str):
                    delta["content"] = filt.feed(delta["content"])
                if choice.get("finish_reason"):
                    delta["content"] = (delta.get("content") or "") + filt.flush()
            return [data]
        kind, index = data.get("type"), data.get("index", 0)
        if kind == "content_block_start":
            block = data.get("content_block") or {}
            if block.get("type") in ("thinking", "redacted_thinking"):
                self.thinking_blocks.add(index)
                return [{**data, "content_block": {"type": "text", "text": ""}}]
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            if index in self.thinking_blocks:
                return []
            if delta.get("type") == "text_delta":
                text = self._filter(index).feed(delta.get("text", ""))
                return [{**data, "delta": {**delta, "text": text}}]
        elif kind == "content_block_stop" and index in self.filters:
            rest = self.filters.pop(index).flush()
            if rest:  # held back as a possible tag, but the block ended: it was text
                held = {"type": "content_block_delta", "index": index}
                return [{**held, "delta": {"type": "text_delta", "text": rest}}, data]
        return [data]
