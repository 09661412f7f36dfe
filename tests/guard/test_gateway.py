"""The gateway in process (``httpx.ASGITransport``), the built-in mock as its upstream."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from guard.app import CALL_ID_HEADER
from guard.mock import MockSettings, MockUpstream, reply_tokens
from guard.settings import GuardSettings
from guard.state import FileStateStore
from tests.guard.conftest import (
    Factory,
    chat,
    eventually,
    journal_records,
    message,
    read_segments,
)

pytestmark = pytest.mark.anyio
Gw = tuple[Any, httpx.AsyncClient]


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def by_call_id(spool: Path) -> dict[str, dict[str, Any]]:
    return {r["call_id"]: r for r in journal_records(spool)}


def sse_data(text: str) -> list[Any]:
    out = []
    for line in text.split("\n"):
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(orjson.loads(line[6:]))
    return out


async def test_openai_call_is_proxied_and_logged(
    gateway: Gw, key: str, settings: GuardSettings
) -> None:
    _, client = gateway
    r = await client.post(
        "/v1/chat/completions",
        json=chat(
            messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"}]
        ),
        headers={**auth(key), "user-agent": "probe/1"},
    )
    assert r.status_code == 200
    body = r.json()
    assert body["choices"][0]["message"]["content"] == "".join(reply_tokens("Q1"))
    record = by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]
    assert record["account_id"] == "acct-1"
    assert record["api_key_id"].startswith("key_")
    assert (record["prompt"], record["system_prompt"]) == ("Q1", "Be brief.")
    assert record["response"] == body["choices"][0]["message"]["content"]
    assert (record["prompt_tokens"], record["completion_tokens"]) == (1, len(reply_tokens("Q1")))
    assert (record["status_code"], record["user_agent"], record["model"]) == (
        200,
        "probe/1",
        "mock-1",
    )
    assert record["latency_ms"] > 0
    assert r.headers["x-ratelimit-limit-requests"] == str(settings.rpm_per_key)


async def test_upstream_key_is_sent_upstream_but_never_logged_or_returned(
    gateway: Gw, key: str, settings: GuardSettings, upstream_key: str
) -> None:
    _, client = gateway  # the mock refuses calls without "upstream-secret"
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 200
    assert upstream_key not in r.text and upstream_key not in str(r.headers)
    journals = b"".join(p.read_bytes() for p in (settings.spool / "journal").iterdir())
    assert upstream_key.encode() not in journals
    assert key.encode() not in journals
    assert key not in settings.state.read_text()


async def test_wrong_upstream_key_is_a_502_not_a_401(
    make_gateway: Factory, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARD_TEST_UPSTREAM_KEY", "wrong")
    _, client = await make_gateway()
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 502
    assert "credentials" in r.json()["error"]["message"]


async def test_openai_stream_passes_events_and_logs_usage(
    gateway: Gw, key: str, settings: GuardSettings
) -> None:
    _, client = gateway
    async with client.stream(
        "POST", "/v1/chat/completions", json=chat("S1", stream=True), headers=auth(key)
    ) as r:
        assert r.status_code == 200
        assert r.headers["x-accel-buffering"] == "no"
        assert r.headers["content-type"].startswith("text/event-stream")
        text = (await r.aread()).decode()
    events = sse_data(text)
    assert text.rstrip().endswith("data: [DONE]")
    assert all(e["choices"] for e in events), "usage chunk the client did not ask for leaked"
    content = "".join(e["choices"][0]["delta"].get("content", "") for e in events)
    assert content == "".join(reply_tokens("S1"))
    record = by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]
    assert record["response"] == content
    assert record["completion_tokens"] == len(reply_tokens("S1"))


async def test_openai_stream_keeps_usage_chunk_when_asked(gateway: Gw, key: str) -> None:
    _, client = gateway
    body = chat(stream=True, stream_options={"include_usage": True})
    r = await client.post("/v1/chat/completions", json=body, headers=auth(key))
    usage = [e for e in sse_data(r.text) if not e["choices"]]
    assert usage and usage[0]["usage"]["completion_tokens"] == len(reply_tokens("What is 2+2?"))


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_protocol(
    make_gateway: Factory, key: str, settings: GuardSettings, stream: bool
) -> None:
    _, client = await make_gateway(upstream_protocol="anthropic")
    r = await client.post(
        "/v1/messages",
        json=message("A1", stream=stream, system="Sys"),
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 200
    expected = "".join(reply_tokens("A1"))
    if stream:
        deltas = [
            e["delta"]["text"] for e in sse_data(r.text) if e["type"] == "content_block_delta"
        ]
        assert "".join(deltas) == expected
        assert "event: message_stop" in r.text
    else:
        assert r.json()["content"][0]["text"] == expected
    record = by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]
    assert (record["prompt"], record["system_prompt"], record["response"]) == (
        "A1",
        "Sys",
        expected,
    )
    assert (record["prompt_tokens"], record["completion_tokens"]) == (1, len(reply_tokens("A1")))


async def test_models(gateway: Gw, key: str) -> None:
    _, client = gateway
    r = await client.get("/v1/models", headers=auth(key))
    assert r.status_code == 200
    assert [m["id"] for m in r.json()["data"]] == ["mock-1", "mock-reasoner"]
    assert (await client.get("/v1/models")).status_code == 401


async def test_client_protocol_other_than_upstream_is_refused_clearly(
    gateway: Gw, key: str
) -> None:
    _, client = gateway
    r = await client.post("/v1/messages", json=message(), headers={"x-api-key": key})
    assert r.status_code == 404
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == "not_found_error"
    assert "POST /v1/chat/completions" in err["error"]["message"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1]", "JSON object"),
        (orjson.dumps({"messages": [{"role": "user", "content": "x"}]}), "'model'"),
        (orjson.dumps({"model": "m", "messages": []}), "'messages'"),
        (orjson.dumps({"model": "m", "messages": ["x"]}), "'role'"),
        (orjson.dumps({"model": "m", "stream": "yes", "messages": [{"role": "user"}]}), "'stream'"),
    ],
)
async def test_malformed_body_is_400_in_openai_format(
    gateway: Gw, key: str, settings: GuardSettings, body: bytes, needle: str
) -> None:
    _, client = gateway
    r = await client.post("/v1/chat/completions", content=body, headers=auth(key))
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and needle in error["message"]
    record = by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]
    assert (record["status_code"], record["prompt"]) == (400, body.decode())  # kept as text


async def test_anthropic_errors_use_anthropic_format(make_gateway: Factory, key: str) -> None:
    _, client = await make_gateway(upstream_protocol="anthropic")
    r = await client.post("/v1/messages", json=chat(), headers={"x-api-key": key})
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "'max_tokens' is required and must be a positive integer",
        },
    }
    r = await client.post("/v1/messages", json=message(), headers={"x-api-key": "dg-nope"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


async def test_unknown_and_revoked_keys_are_401_and_logged(
    gateway: Gw, key: str, store: FileStateStore, settings: GuardSettings
) -> None:
    _, client = gateway
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth("dg-unknown"))
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert (
        await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    ).status_code == 200
    key_id = store.list_keys("acct-1")[0].key_id
    store.revoke_key(key_id)
    for _ in range(40):  # applied within the poll interval, without a restart
        r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
        if r.status_code == 401:
            break
        await asyncio.sleep(0.05)
    assert r.status_code == 401
    records = by_call_id(settings.spool)
    assert [rec["status_code"] for rec in records.values()].count(401) >= 2
    refused = records[r.headers[CALL_ID_HEADER.decode()]]
    assert (refused["api_key_id"], refused["prompt"]) == (None, "What is 2+2?")


async def _until(
    client: httpx.AsyncClient, key: str, status: int, body: dict[str, Any]
) -> httpx.Response:
    for _ in range(40):
        r = await client.post("/v1/chat/completions", json=body, headers=auth(key))
        if r.status_code == status:
            return r
        await asyncio.sleep(0.05)
    return r


async def test_suspended_account_gets_403_saying_so(
    gateway: Gw, key: str, store: FileStateStore
) -> None:
    _, client = gateway
    store.set_account_state("acct-1", "suspended", "extraction ring under review")
    r = await _until(client, key, 403, chat())
    assert r.status_code == 403
    assert (
        r.json()["error"]["message"] == "account acct-1 is suspended: extraction ring under review"
    )
    store.set_account_state("acct-1", "active")
    assert (await _until(client, key, 200, chat())).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
async def test_restricted_account_gets_no_reasoning_and_capped_output(
    make_gateway: Factory, key: str, store: FileStateStore, settings: GuardSettings, stream: bool
) -> None:
    cap = 30  # the mock's reasoning section is 19 tokens, its whole answer 36
    app, client = await make_gateway(restricted_max_tokens=cap)
    body = chat("R1", max_tokens=1000, stream=stream)
    full = (await client.post("/v1/chat/completions", json=body, headers=auth(key))).text
    assert "<think>" in full
    store.set_account_state("acct-1", "restricted", "pending review")
    await eventually(lambda: app.snapshot.account("acct-1").state == "restricted")
    r = await client.post("/v1/chat/completions", json=body, headers=auth(key))
    assert r.status_code == 200
    if stream:
        text = "".join(e["choices"][0]["delta"].get("content", "") for e in sse_data(r.text))
    else:
        text = r.json()["choices"][0]["message"]["content"]
    assert text.startswith("Answer: ") and "think" not in text and "Reasoning" not in text
    record = by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]
    assert record["completion_tokens"] == cap  # output capped upstream
    assert record["response"] == text


async def test_restricted_anthropic_drops_thinking(
    make_gateway: Factory, key: str, store: FileStateStore
) -> None:
    app, client = await make_gateway(upstream_protocol="anthropic")
    store.set_account_state("acct-1", "restricted")
    await eventually(lambda: app.snapshot.account("acct-1").state == "restricted")
    body = message(thinking={"type": "enabled", "budget_tokens": 1024})
    r = await client.post("/v1/messages", json=body, headers={"x-api-key": key})
    assert r.status_code == 200
    assert "<think>" not in r.json()["content"][0]["text"]
    assert r.json()["content"][0]["text"].startswith("Answer:")


async def test_body_over_limit_is_413(make_gateway: Factory, key: str) -> None:
    _, client = await make_gateway(max_body_bytes=1000)
    r = await client.post("/v1/chat/completions", json=chat("x" * 2000), headers=auth(key))
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"


async def test_rate_limit_is_429_with_retry_after(
    make_gateway: Factory, key: str, settings: GuardSettings
) -> None:
    _, client = await make_gateway(rpm_per_key=60, burst_s=3)  # 3 at once, then 1 a second
    statuses = []
    for _ in range(5):
        r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
        statuses.append(r.status_code)
    assert statuses == [200, 200, 200, 429, 429]
    assert r.json()["error"]["type"] == "rate_limit_error"
    assert r.headers["retry-after"] == "1"
    assert 0 < int(r.headers["retry-after-ms"]) <= 1000
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    await asyncio.sleep(int(r.headers["retry-after-ms"]) / 1000 + 0.05)
    assert (
        await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    ).status_code == 200


async def test_token_limit_applies_after_a_large_answer(make_gateway: Factory, key: str) -> None:
    app, client = await make_gateway(tpm_per_key=60, burst_s=30)  # 30 tokens of burst
    first = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert first.status_code == 200  # 37 tokens: now in debt
    await eventually(lambda: len(app._tasks) == 1)  # the charge is done; the state poller stays
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 429 and "tokens" in r.json()["error"]["message"]


async def test_throttled_account_gets_lower_limits(
    gateway: Gw, key: str, store: FileStateStore, settings: GuardSettings
) -> None:
    app, client = gateway
    store.set_account_state("acct-1", "throttled")
    await eventually(lambda: app.snapshot.account("acct-1").state == "throttled")
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.headers["x-ratelimit-limit-requests"] == str(
        int(settings.rpm_per_key * settings.throttled_factor)
    )


async def test_upstream_failure_is_502_and_timeout_504(make_gateway: Factory, key: str) -> None:
    _, client = await make_gateway()
    r = await client.post(
        "/v1/chat/completions", json={**chat(), "model": "mock-error"}, headers=auth(key)
    )
    assert r.status_code == 502 and "HTTP 500" in r.json()["error"]["message"]

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    _, down = await make_gateway(transport=httpx.MockTransport(refuse))
    r = await down.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 502 and "cannot be reached" in r.json()["error"]["message"]
    _, slow = await make_gateway(transport=httpx.MockTransport(stall))
    r = await slow.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 504 and r.json()["error"]["code"] == "upstream_timeout"


async def test_upstream_client_error_passes_through(make_gateway: Factory, key: str) -> None:
    def bad_model(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": {"message": "no such model", "code": "model_not_found"}}
        )

    _, client = await make_gateway(transport=httpx.MockTransport(bad_model))
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


async def test_stream_broken_midway_ends_with_error_event(
    make_gateway: Factory, key: str, settings: GuardSettings
) -> None:
    class Broken(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n'
            raise httpx.ReadError("reset by peer")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Broken(), headers={"content-type": "text/event-stream"})

    _, client = await make_gateway(transport=httpx.MockTransport(handler))
    r = await client.post("/v1/chat/completions", json=chat(stream=True), headers=auth(key))
    events = sse_data(r.text)
    assert events[0]["choices"][0]["delta"]["content"] == "par"
    assert "broke off" in events[-1]["error"]["message"]
    record = by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]
    assert (record["status_code"], record["response"]) == (502, "par")


async def test_healthz_and_metrics(gateway: Gw, key: str) -> None:
    _, client = gateway
    assert (await client.get("/healthz")).json() == {"status": "ok", "spool": "writable"}
    await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    await client.post("/v1/chat/completions", json=chat(), headers=auth("dg-bad"))
    text = (await client.get("/metrics")).text
    assert 'guard_requests_total{endpoint="/v1/chat/completions",status="200"} 1.0' in text
    assert 'guard_requests_total{endpoint="/v1/chat/completions",status="401"} 1.0' in text
    assert "guard_spool_records_written_total 2.0" in text
    assert "guard_records_lost_total 0.0" in text
    assert "guard_added_latency_seconds_count 1.0" in text
    assert "guard_upstream_latency_seconds_count 1.0" in text


async def test_every_call_is_in_a_segment_after_shutdown(
    make_gateway: Factory, key: str, settings: GuardSettings
) -> None:
    app, client = await make_gateway()
    ids = set()
    results = await asyncio.gather(
        *(
            client.post("/v1/chat/completions", json=chat(f"q{i}"), headers=auth(key))
            for i in range(30)
        )
    )
    ids = {r.headers[CALL_ID_HEADER.decode()] for r in results}
    await app.shutdown()
    table = read_segments(settings.spool)
    assert sorted(table.column("call_id").to_pylist()) == sorted(ids)
    assert list((settings.spool / "journal").glob("*.journal")) == []


async def test_mock_streams_at_the_configured_speed() -> None:
    mock = MockUpstream(MockSettings(latency_ms=0, tokens_per_second=200))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mock), base_url="http://m") as c:
        loop = asyncio.get_running_loop()
        start = loop.time()
        r = await c.post("/v1/chat/completions", json=chat(stream=True))
        elapsed = loop.time() - start
    n = len(reply_tokens("What is 2+2?")) + 2
    assert r.status_code == 200 and elapsed >= n / 200 * 0.9


async def test_unreachable_redis_limiter_is_503_not_unlimited(
    make_gateway: Factory, key: str, settings: GuardSettings
) -> None:
    from guard.ratelimit import RedisLimiter

    _, client = await make_gateway(inject={"limiter": RedisLimiter("redis://127.0.0.1:1/0")})
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 503 and "rate limiter is unavailable" in r.json()["error"]["message"]
    assert by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]["status_code"] == 503


async def test_segments_load_into_the_warehouse_exactly_once(
    make_gateway: Factory, key: str, settings: GuardSettings, tmp_path: Path
) -> None:
    from ingest.loader import ingest_spool
    from ingest.warehouse import Warehouse

    app, client = await make_gateway()
    for i in range(5):
        await client.post("/v1/chat/completions", json=chat(f"w{i}"), headers=auth(key))
    await client.post("/v1/chat/completions", json=chat(), headers=auth("dg-bad"))
    await app.shutdown()
    with Warehouse.open(tmp_path / "w.duckdb") as wh:
        ingest_spool(wh, settings.spool)
        ingest_spool(wh, settings.spool)  # a second pass loads nothing again
        rows = wh.fetchall("SELECT account_id, status_code FROM calls ORDER BY prompt")
    assert sorted(rows) == sorted([("acct-1", 200)] * 5 + [("unauthenticated", 401)])


class Chunks(httpx.AsyncByteStream):
    """A response body sent as it would come off the network."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield self.body


def answering(status: int, body: bytes, content_type: str = "application/json") -> Any:
    """An upstream (for ``httpx.MockTransport``) that answers every call with ``body``."""

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": content_type}
        return httpx.Response(status, stream=Chunks(body), headers=headers)

    return httpx.MockTransport(handler)


@pytest.mark.parametrize(
    "body",
    [b"<html>upstream proxy error</html>", b"[1, 2]", b'{"choices": 5}', b'{"choices": {"a": 1}}'],
)
async def test_a_malformed_upstream_answer_is_a_502_and_logged_once(
    make_gateway: Factory, key: str, settings: GuardSettings, body: bytes
) -> None:
    _, client = await make_gateway(transport=answering(200, body, "text/html"))
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 502
    assert "malformed answer" in r.json()["error"]["message"]
    records = journal_records(settings.spool)
    assert [(rec["call_id"], rec["status_code"]) for rec in records] == [
        (r.headers[CALL_ID_HEADER.decode()], 502)
    ]
    assert records[0]["prompt"] == "What is 2+2?"


async def test_a_restricted_account_never_gets_an_answer_that_could_not_be_stripped(
    make_gateway: Factory, key: str, store: FileStateStore, settings: GuardSettings
) -> None:
    body = orjson.dumps({"choices": ["<think>the hidden reasoning</think>"], "usage": {}})
    app, client = await make_gateway(transport=answering(200, body))
    store.set_account_state("acct-1", "restricted")
    await eventually(lambda: app.snapshot.account("acct-1").state == "restricted")
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 502 and "hidden reasoning" not in r.text
    assert by_call_id(settings.spool)[r.headers[CALL_ID_HEADER.decode()]]["status_code"] == 502


@pytest.mark.parametrize(
    "event",
    [b'data: {"choices": [5]}\n\n', b'data: {"choices": [{"index": 0, "delta": "text"}]}\n\n'],
)
async def test_a_stream_event_that_breaks_the_reader_ends_with_an_error_event(
    make_gateway: Factory, key: str, settings: GuardSettings, event: bytes
) -> None:
    good = b'data: {"choices":[{"index":0,"delta":{"content":"par"}}]}\n\n'
    stream = good + event + b"data: [DONE]\n\n"
    _, client = await make_gateway(transport=answering(200, stream, "text/event-stream"))
    r = await client.post("/v1/chat/completions", json=chat(stream=True), headers=auth(key))
    events = sse_data(r.text)
    assert events[0]["choices"][0]["delta"]["content"] == "par"
    assert "malformed event" in events[-1]["error"]["message"]
    assert "[DONE]" not in r.text  # the answer is not complete: an SDK must not take it as such
    records = journal_records(settings.spool)
    assert [(rec["call_id"], rec["status_code"], rec["response"]) for rec in records] == [
        (r.headers[CALL_ID_HEADER.decode()], 502, "par")
    ]


async def test_an_anthropic_stream_with_a_text_that_is_not_a_string_is_still_logged(
    make_gateway: Factory, key: str, settings: GuardSettings
) -> None:
    def event(data: dict[str, Any]) -> bytes:
        return b"event: " + data["type"].encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    delta = {"type": "content_block_delta", "index": 0}
    stream = b"".join(
        [
            event({**delta, "delta": {"type": "text_delta", "text": "Hel"}}),
            event({**delta, "delta": {"type": "text_delta", "text": 5}}),
            event({**delta, "delta": {"type": "text_delta", "text": "lo"}}),
            event({"type": "message_stop"}),
        ]
    )
    transport = answering(200, stream, "text/event-stream")
    _, client = await make_gateway(transport=transport, upstream_protocol="anthropic")
    r = await client.post("/v1/messages", json=message(stream=True), headers={"x-api-key": key})
    assert r.status_code == 200 and "event: message_stop" in r.text
    records = journal_records(settings.spool)
    assert [(rec["call_id"], rec["status_code"], rec["response"]) for rec in records] == [
        (r.headers[CALL_ID_HEADER.decode()], 200, "Hello")
    ]


async def test_an_unexpected_error_still_leaves_the_calls_record(
    make_gateway: Factory, key: str, settings: GuardSettings
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("a bug in a transport")

    _, client = await make_gateway(transport=httpx.MockTransport(broken))
    with pytest.raises(RuntimeError, match="a bug in a transport"):  # the server answers 500
        await client.post("/v1/chat/completions", json=chat("kept"), headers=auth(key))
    records = journal_records(settings.spool)
    assert [(rec["status_code"], rec["prompt"]) for rec in records] == [(500, "kept")]


async def test_a_token_refusal_says_tokens_even_with_no_requests_left(
    make_gateway: Factory, key: str
) -> None:
    # 2 requests and 2 tokens of burst per key: the first call (37 tokens) leaves both spent
    app, client = await make_gateway(rpm_per_key=12, tpm_per_key=12, burst_s=10)
    first = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert first.status_code == 200
    await eventually(lambda: len(app._tasks) == 1)  # the tokens are charged
    r = await client.post("/v1/chat/completions", json=chat(), headers=auth(key))
    assert r.status_code == 429
    assert r.headers["x-ratelimit-remaining-requests"] == "0"  # the request itself was allowed
    assert "rate limit on tokens per minute for this key" in r.json()["error"]["message"]
    metrics = (await client.get("/metrics")).text
    assert 'guard_rate_limit_rejections_total{limit="tokens"} 1.0' in metrics
    assert 'guard_rate_limit_rejections_total{limit="requests"}' not in metrics
