"""``distillguard mock-upstream``: a model API that speaks both protocols, for demos, tests and
benchmarks.

The answer to a prompt is deterministic: a ``<think>…</think>`` reasoning section then an answer,
words drawn from a fixed vocabulary by the prompt's SHA-256. It waits ``latency_ms`` before the
first byte, then sends ``tokens_per_second`` words a second (0: all at once). ``max_tokens`` cuts
the answer. Models with special names fail on purpose: ``mock-error`` answers 500, ``mock-slow``
waits 60 s before answering.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

MODELS = ("mock-1", "mock-reasoner")
_VOCAB = (
    "the model considers each part of question carefully then weighs evidence and checks "
    "numbers before settling on result which follows from facts given so answer is clear"
)
_WORDS = tuple(_VOCAB.split(" "))


def reply_tokens(prompt: str, reasoning_words: int = 16, answer_words: int = 16) -> list[str]:
    """The deterministic reply to ``prompt``, as the pieces (tokens) it is streamed in."""
    digest = hashlib.sha256(prompt.encode()).digest()
    words = [_WORDS[digest[i % len(digest)] % len(_WORDS)] for i in range(64)]
    reasoning = ["<think>", "Reasoning: ", *(w + " " for w in words[:reasoning_words]), "</think>"]
    answer = ["Answer: ", *(w + " " for w in words[32 : 32 + answer_words])]
    answer[-1] = answer[-1].rstrip() + "."
    return reasoning + answer


@dataclass
class MockSettings:
    """How the mock behaves."""

    latency_ms: float = 50.0
    tokens_per_second: float = 0.0
    api_key: str | None = None


class MockUpstream:
    """The mock as a plain ASGI app."""

    def __init__(self, settings: MockSettings | None = None) -> None:
        self.settings = settings or MockSettings()
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].replace("lifespan.", "")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        path = scope["path"]
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
            return
        key = self.settings.api_key
        if key is not None:
            given = headers.get(b"x-api-key") or headers.get(b"authorization", b"")[7:]
            if given.decode() != key:
                await _json(send, 401, {"error": {"message": "mock: wrong upstream key"}})
                return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.calls += 1
        if path == "/v1/models":
            await _json(send, 200, _models(b"anthropic-version" in headers))
        elif path == "/v1/chat/completions" and scope["method"] == "POST":
            await self._chat(send, orjson.loads(body), "openai")
        elif path == "/v1/messages" and scope["method"] == "POST":
            await self._chat(send, orjson.loads(body), "anthropic")
        else:
            await _json(send, 404, {"error": {"message": f"mock: no route {path}"}})

    async def _chat(self, send: Send, body: dict[str, Any], proto: str) -> None:
        model = body.get("model", "mock-1")
        if model == "mock-error":
            await _json(send, 500, {"error": {"message": "mock: failing on purpose"}})
            return
        await asyncio.sleep(60.0 if model == "mock-slow" else self.settings.latency_ms / 1000.0)
        messages = body.get("messages") or []
        prompt = "\n".join(
            m["content"]
            if isinstance(m.get("content"), str)
            else orjson.dumps(m["content"]).decode()
            for m in messages
            if m.get("role") == "user"
        )
        tokens = reply_tokens(prompt)
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        stop = "stop" if proto == "openai" else "end_turn"
        if isinstance(limit, int) and limit < len(tokens):
            tokens = tokens[:limit]
            stop = "length" if proto == "openai" else "max_tokens"
        usage = (len(prompt.split()) or 1, len(tokens))
        if not body.get("stream"):
            delay = (
                len(tokens) / self.settings.tokens_per_second
                if self.settings.tokens_per_second
                else 0
            )
            await asyncio.sleep(delay)
            await _json(send, 200, _complete(proto, model, "".join(tokens), stop, usage))
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream"),
                    (b"cache-control", b"no-cache"),
                ],
            }
        )
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        gap = 1.0 / self.settings.tokens_per_second if self.settings.tokens_per_second else 0.0
        for event in _events(proto, model, tokens, stop, usage, include_usage):
            await send({"type": "http.response.body", "body": event, "more_body": True})
            if gap:
                await asyncio.sleep(gap)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def _models(anthropic: bool) -> dict[str, Any]:
    if anthropic:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"}
            for m in MODELS
        ]
        return {"data": data, "has_more": False, "first_id": MODELS[0], "last_id": MODELS[-1]}
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1767225600, "owned_by": "mock"} for m in MODELS
        ],
    }


def _complete(
    proto: str, model: str, text: str, stop: str, usage: tuple[int, int]
) -> dict[str, Any]:
    if proto == "anthropic":
        return {
            "id": "msg_" + uuid.uuid4().hex,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
        }
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": stop,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": usage[0] + usage[1],
        },
    }


def _events(
    proto: str,
    model: str,
    tokens: list[str],
    stop: str,
    usage: tuple[int, int],
    include_usage: bool,
) -> list[bytes]:
    if proto == "anthropic":
        return _anthropic_events(model, tokens, stop, usage)
    ident, created = "chatcmpl-" + uuid.uuid4().hex, int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
        data = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if include_usage:
            data["usage"] = None
        return b"data: " + orjson.dumps(data) + b"\n\n"

    out = [chunk({"role": "assistant", "content": ""}, None)]
    out += [chunk({"content": t}, None) for t in tokens]
    out.append(chunk({}, stop))
    if include_usage:
        final = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [],
            "usage": {
                "prompt_tokens": usage[0],
                "completion_tokens": usage[1],
                "total_tokens": sum(usage),
            },
        }
        out.append(b"data: " + orjson.dumps(final) + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return out


def _anthropic_events(
    model: str, tokens: list[str], stop: str, usage: tuple[int, int]
) -> list[bytes]:
    def event(data: dict[str, Any]) -> bytes:
        return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    message: dict[str, Any] = {
        "id": "msg_" + uuid.uuid4().hex,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": 1},
    }
    out = [
        event({"type": "message_start", "message": message}),
        event(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            }
        ),
        event({"type": "ping"}),
    ]
    out += [
        event(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": t}}
        )
        for t in tokens
    ]
    out += [
        event({"type": "content_block_stop", "index": 0}),
        event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage[1]},
            }
        ),
        event({"type": "message_stop"}),
    ]
    return out


async def _json(send: Send, status: int, body: dict[str, Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
