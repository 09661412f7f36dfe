"""The gateway: a plain ASGI app (no framework on the hot path).

Per call: read the body (413 past the limit), authenticate the key by its SHA-256 hash (401),
enforce the account's state (403 suspended, restricted rewritten), check the protocol (404 when the
upstream speaks the other one), validate (400), check rate limits (429), proxy to the upstream
(502/504 on failure), stream events through as they arrive, then write the call record and only
then complete the response. If the call log cannot be written the answer is 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import orjson

from guard.exceptions import SpoolUnavailable
from guard.metrics import CONTENT_TYPE, Metrics
from guard.protocol import (
    ANTHROPIC_PATH,
    MODELS_PATH,
    OPENAI_PATH,
    BadRequest,
    Outcome,
    Proto,
    Request,
    StreamReader,
    error_body,
    event_data,
    parse_request,
    read_answer,
    split_events,
    stream_error_event,
)
from guard.proxies import TrustedProxies
from guard.ratelimit import Bucket, MemoryLimiter, RateLimiter, RedisLimiter, Verdict
from guard.restrict import StreamRestrictor, restrict_request, restrict_response
from guard.settings import GuardSettings
from guard.spool import Spool
from guard.state import KeyRecord, Snapshot, StateStore, hash_key, open_store
from guard.transport import LeanTransport

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)

UNAUTHENTICATED = "unauthenticated"
"""``account_id`` of records for calls made without a valid key."""

CALL_ID_HEADER = b"x-distillguard-call-id"
_RAW_PROMPT_CHARS = 65536
"""How much of an unparseable body is kept as the record's prompt."""
_JSON = (b"content-type", b"application/json")
_PASS_HEADERS = (b"content-type", b"retry-after", b"x-request-id", b"request-id")


_LIMITS = (("requests", "key"), ("requests", "account"), ("tokens", "key"), ("tokens", "account"))
"""What each bucket of :meth:`Gateway._buckets` limits, in its order (a Verdict's ``refused``)."""


def _ts_us() -> int:
    return time.time_ns() // 1000


class _Call:
    """One call in flight: its record, its start time and the time spent upstream."""

    __slots__ = ("proto", "record", "started", "upstream_s")

    def __init__(
        self,
        proto: Proto,
        scope: Scope,
        headers: dict[bytes, bytes],
        proxies: TrustedProxies | None,
    ) -> None:
        self.proto = proto
        self.started = time.perf_counter()
        self.upstream_s = 0.0
        client = scope.get("client")
        client_ip = client[0] if client else None
        if proxies is not None and client_ip is not None:
            client_ip = proxies.client(client_ip, scope["headers"])
        ua = headers.get(b"user-agent")
        self.record: dict[str, Any] = {
            "call_id": uuid.uuid4().hex,
            "ts": _ts_us(),
            "account_id": UNAUTHENTICATED,
            "api_key_id": None,
            "client_ip": client_ip,
            "user_agent": ua.decode("latin-1") if ua else None,
            "endpoint": scope["path"],
            "model": None,
            "prompt": "",
            "system_prompt": None,
            "response": None,
            "prompt_tokens": None,
            "completion_tokens": None,
            "status_code": None,
            "latency_ms": None,
        }

    def close(self, status: int, outcome: Outcome | None = None) -> float:
        """Fill in status, latency and response; returns the elapsed seconds."""
        elapsed = time.perf_counter() - self.started
        rec = self.record
        rec["status_code"] = status
        rec["latency_ms"] = round(elapsed * 1000.0, 3)
        if outcome is not None:
            rec["response"] = outcome.text
            rec["prompt_tokens"] = outcome.prompt_tokens
            rec["completion_tokens"] = outcome.completion_tokens
        return elapsed


class Gateway:
    """The ASGI application. Build with :func:`create_app`; start with lifespan or ``running()``."""

    def __init__(
        self,
        settings: GuardSettings,
        *,
        store: StateStore | None = None,
        limiter: RateLimiter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        spool: Spool | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self._store = store
        self._limiter = limiter
        self._transport = transport
        self._spool = spool
        self.snapshot = Snapshot()
        self._version = ""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._status_counters: dict[tuple[str, int], Any] = {}
        base = settings.upstream.rstrip("/")
        self.upstream_base = base.removesuffix("/v1")
        self._proxies = TrustedProxies.parse(settings.trusted_proxies)
        self._upstream_key = os.environ.get(settings.upstream_key_env, "")
        self.started = False

    # --- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """Open the state, the limiter, the upstream client and the spool; start polling."""
        s = self.settings
        if self._store is None:
            self._store = await asyncio.to_thread(open_store, s.state, s.redis, s.redis_prefix)
        self.store = self._store
        self._version = await asyncio.to_thread(self.store.version)
        self.snapshot = await asyncio.to_thread(self.store.snapshot)
        if self._limiter is None:
            self._limiter = RedisLimiter(s.redis) if s.redis else MemoryLimiter()
        self.limiter = self._limiter
        transport = self._transport or LeanTransport(
            connect_timeout=s.upstream_connect_timeout_s, read_timeout=s.upstream_timeout_s
        )
        self.transport = transport
        timeout = httpx.Timeout(s.upstream_timeout_s, connect=s.upstream_connect_timeout_s)
        self._timeouts = timeout.as_dict()
        self._urls: dict[str, httpx.URL] = {}
        if self._spool is None:
            self._spool = Spool(
                s.spool,
                durable=s.durability == "durable",
                max_bytes=s.segment_max_bytes,
                max_age_s=s.segment_max_age_s,
            )
        self.spool = self._spool
        self.spool.hooks = self.metrics.spool_hooks()  # the availability gauge follows the spool
        await self.spool.start()
        if not self._upstream_key:
            log.warning("%s is not set: calls go upstream without a key", s.upstream_key_env)
        self._spawn(self._poll_state())
        self.started = True

    async def shutdown(self) -> None:
        """Finish background work, seal the spool, close connections."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.spool.close()
        await self.transport.aclose()
        await self.limiter.aclose()
        self.store.close()
        self.started = False

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """``startup`` and ``shutdown`` around a block (for tests and embedding)."""
        await self.startup()
        try:
            yield self
        finally:
            await self.shutdown()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll_state(self) -> None:
        while True:
            await asyncio.sleep(self.settings.state_poll_s)
            try:
                version = await asyncio.to_thread(self.store.version)
                if version != self._version:
                    self.snapshot = await asyncio.to_thread(self.store.snapshot)
                    self._version = version
            except Exception as exc:  # keep serving the last good state
                log.warning("cannot reload the published state: %s", exc)

    # --- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path, method = scope["path"], scope["method"]
            if path in (OPENAI_PATH, ANTHROPIC_PATH):
                proto: Proto = "openai" if path == OPENAI_PATH else "anthropic"
                if method != "POST":
                    await _respond(send, 405, error_body(proto, 405, f"use POST {path}"))
                    return
                await self._chat(scope, receive, send, proto)
            elif path == MODELS_PATH and method == "GET":
                await self._models(scope, receive, send)
            elif path == "/healthz":
                await self._health(send)
            elif path == "/metrics":
                await _respond(
                    send, 200, self.metrics.render(), [(b"content-type", CONTENT_TYPE.encode())]
                )
            else:
                proto = "anthropic" if path.startswith(ANTHROPIC_PATH) else "openai"
                await _respond(send, 404, error_body(proto, 404, f"no route {method} {path}"))
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _health(self, send: Send) -> None:
        if self.spool.available:
            await _respond(send, 200, b'{"status":"ok","spool":"writable"}')
        else:
            body = orjson.dumps({"status": "unavailable", "error": self.spool.error})
            await _respond(send, 503, body)

    # --- the calls -------------------------------------------------------------------------

    def _authenticate(self, headers: dict[bytes, bytes]) -> KeyRecord | None:
        raw = headers.get(b"authorization", b"")
        secret = raw[7:] if raw[:7].lower() == b"bearer " else headers.get(b"x-api-key", b"")
        if not secret:
            return None
        key = self.snapshot.keys_by_hash.get(hash_key(secret.strip().decode("latin-1")))
        return None if key is None or key.revoked else key

    async def _finish(
        self,
        send: Send,
        call: _Call,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        outcome: Outcome | None = None,
    ) -> None:
        """Log the call durably, then answer it (503 instead if the log cannot be written)."""
        failure = await self._log(call, status, outcome)
        if failure is not None:
            status, body, headers = 503, error_body(call.proto, 503, failure), None
        all_headers = [_JSON, (CALL_ID_HEADER, call.record["call_id"].encode())]
        if headers:
            all_headers = [*headers, all_headers[1]]
        await _respond(send, status, body, all_headers)

    async def _log(self, call: _Call, status: int, outcome: Outcome | None) -> str | None:
        """Write the call's record and count it; returns why the log failed, if it did."""
        call.close(status, outcome)
        failure = None
        try:
            await self.spool.append(call.record)
        except SpoolUnavailable as exc:
            self.metrics.unavailable.inc()
            status, failure = 503, str(exc)
        self._count(call.record["endpoint"], status)
        if call.upstream_s:  # added latency includes waiting for the record's fsync
            self.metrics.upstream.observe(call.upstream_s)
            elapsed = time.perf_counter() - call.started
            self.metrics.added.observe(max(0.0, elapsed - call.upstream_s))
        return failure

    async def _log_crash(self, call: _Call) -> None:
        """Write the record of a call that an unexpected error ended before it was logged (the
        error then reaches the server, which answers 500 if nothing was sent yet)."""
        if call.record["status_code"] is None:
            await self._log(call, 500, None)

    def _count(self, endpoint: str, status: int) -> None:
        counter = self._status_counters.get((endpoint, status))
        if counter is None:
            counter = self.metrics.requests.labels(endpoint, str(status))
            self._status_counters[(endpoint, status)] = counter
        counter.inc()

    async def _refuse_unlogged(self, send: Send, proto: Proto, endpoint: str) -> bool:
        """Answer 503 at once when the spool is down (no upstream call, no record possible)."""
        if self.spool.available:
            return False
        self.metrics.unavailable.inc()
        self._count(endpoint, 503)
        message = f"{self.spool.error}; refusing traffic that cannot be logged"
        await _respond(send, 503, error_body(proto, 503, message))
        return True

    async def _admit(
        self, call: _Call, headers: dict[bytes, bytes], send: Send
    ) -> KeyRecord | None:
        """Authenticate and enforce suspension; answers and returns None when refused."""
        key = self._authenticate(headers)
        proto = call.proto
        if key is None:
            msg = (
                "invalid or revoked API key: pass a distillguard key as a Bearer token or x-api-key"
            )
            await self._finish(send, call, 401, error_body(proto, 401, msg))
            return None
        call.record["account_id"] = key.account_id
        call.record["api_key_id"] = key.key_id
        account = self.snapshot.account(key.account_id)
        if account.state == "suspended":
            reason = f": {account.reason}" if account.reason else ""
            msg = f"account {key.account_id} is suspended{reason}"
            await self._finish(send, call, 403, error_body(proto, 403, msg))
            return None
        return key

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        if await self._refuse_unlogged(send, "openai", MODELS_PATH):
            return
        headers = dict(scope["headers"])
        proto: Proto = "anthropic" if b"anthropic-version" in headers else "openai"
        call = _Call(proto, scope, headers, self._proxies)
        try:
            if await self._admit(call, headers, send) is None:
                return
            await self._forward(send, call, "GET", MODELS_PATH, b"", headers, stream=False)
        except Exception:
            await self._log_crash(call)
            raise

    async def _chat(self, scope: Scope, receive: Receive, send: Send, proto: Proto) -> None:
        if await self._refuse_unlogged(send, proto, scope["path"]):
            return
        s = self.settings
        headers = dict(scope["headers"])
        call = _Call(proto, scope, headers, self._proxies)
        try:
            raw = await _read_body(receive, headers, s.max_body_bytes)
            if raw is None:
                msg = f"the request body is over the limit of {s.max_body_bytes} bytes"
                await self._finish(send, call, 413, error_body(proto, 413, msg))
                return
            request, problem = _parse_for_log(proto, raw, call.record)
            key = await self._admit(call, headers, send)
            if key is None:
                return
            if proto != s.upstream_protocol:
                want = OPENAI_PATH if s.upstream_protocol == "openai" else ANTHROPIC_PATH
                msg = (
                    f"this gateway forwards to an {s.upstream_protocol}-protocol upstream, which"
                    f" does not serve {scope['path']}: use POST {want}"
                )
                await self._finish(send, call, 404, error_body(proto, 404, msg))
                return
            if request is None:
                await self._finish(send, call, 400, error_body(proto, 400, problem))
                return
            account = self.snapshot.account(key.account_id)
            buckets = self._buckets(key, account.state == "throttled")
            try:
                verdict = await self.limiter.check(buckets)
            except Exception as exc:  # Redis down: refuse rather than serve unlimited
                log.error("rate limiter unavailable: %s", exc)
                msg = f"the rate limiter is unavailable ({type(exc).__name__}); retry shortly"
                await self._finish(send, call, 503, error_body(proto, 503, msg))
                return
            limit_headers = _limit_headers(buckets, verdict)
            if not verdict.allowed:
                await self._rate_limited(send, call, buckets, verdict, limit_headers)
                return
            body = request.body
            restricted = account.state == "restricted"
            wants_usage = True
            if restricted:
                body = restrict_request(proto, body, s.restricted_max_tokens)
            if proto == "openai" and request.stream:
                options = body.get("stream_options")
                options = options if isinstance(options, dict) else {}
                wants_usage = bool(options.get("include_usage"))
                if not wants_usage:
                    body = {**body, "stream_options": {**options, "include_usage": True}}
            if body is not request.body:
                raw = orjson.dumps(body)
            outcome = await self._forward(
                send, call, "POST", scope["path"], raw, headers, request.stream,
                restricted=restricted, wants_usage=wants_usage, extra_headers=limit_headers,
                receive=receive,
            )  # fmt: skip
            if outcome is not None:
                tokens = (outcome.prompt_tokens or 0) + (outcome.completion_tokens or 0)
                if tokens:
                    charged = [
                        Bucket(b.name, b.limit_per_min, b.capacity, tokens) for b in buckets[2:]
                    ]
                    self._spawn(self.limiter.charge(charged))
        except Exception:
            await self._log_crash(call)
            raise

    def _buckets(self, key: KeyRecord, throttled: bool) -> list[Bucket]:
        s = self.settings
        factor = s.throttled_factor if throttled else 1.0
        prefix = f"{s.redis_prefix}rl:"
        out = []
        for name, limit, cost in (
            (f"k:{key.key_id}:req", s.rpm_per_key, 1),
            (f"a:{key.account_id}:req", s.rpm_per_account, 1),
            (f"k:{key.key_id}:tok", s.tpm_per_key, 0),
            (f"a:{key.account_id}:tok", s.tpm_per_account, 0),
        ):
            per_min = limit * factor
            capacity = max(1.0, per_min * s.burst_s / 60.0)
            out.append(Bucket(prefix + name, per_min, capacity, cost))
        return out

    async def _rate_limited(
        self,
        send: Send,
        call: _Call,
        buckets: list[Bucket],
        verdict: Verdict,
        limit_headers: list[tuple[bytes, bytes]],
    ) -> None:
        refused = verdict.refused
        which, whose = _LIMITS[refused] if refused is not None else ("unknown", "caller")
        self.metrics.rate_limited.labels(which).inc()
        retry = max(1, math.ceil(verdict.retry_after_s))
        msg = f"rate limit on {which} per minute for this {whose} reached: retry after {retry} s"
        headers = [
            *limit_headers,
            (b"retry-after", str(retry).encode()),
            (b"retry-after-ms", str(math.ceil(verdict.retry_after_s * 1000)).encode()),
            _JSON,
        ]
        await self._finish(send, call, 429, error_body(call.proto, 429, msg), headers)

    def _upstream_headers(self, headers: dict[bytes, bytes]) -> dict[str, str]:
        out = {"content-type": "application/json", "accept-encoding": "identity"}
        if self.settings.upstream_protocol == "anthropic":
            version = headers.get(b"anthropic-version", b"2023-06-01").decode("latin-1")
            out["anthropic-version"] = version
            beta = headers.get(b"anthropic-beta")
            if beta:
                out["anthropic-beta"] = beta.decode("latin-1")
            if self._upstream_key:
                out["x-api-key"] = self._upstream_key
        elif self._upstream_key:
            out["authorization"] = f"Bearer {self._upstream_key}"
        return out

    async def _forward(
        self,
        send: Send,
        call: _Call,
        method: str,
        path: str,
        raw: bytes,
        headers: dict[bytes, bytes],
        stream: bool,
        restricted: bool = False,
        wants_usage: bool = True,
        extra_headers: list[tuple[bytes, bytes]] | None = None,
        receive: Receive | None = None,
    ) -> Outcome | None:
        proto = call.proto
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.upstream_base + path)
        request = httpx.Request(
            method, url, content=raw or None, headers=self._upstream_headers(headers),
            extensions={"timeout": self._timeouts},
        )  # fmt: skip
        sent = time.perf_counter()
        try:
            # straight to the shared client's transport: no cookies, auth or redirects to handle
            response = await self.transport.handle_async_request(request)
        except httpx.TimeoutException:
            call.upstream_s = time.perf_counter() - sent
            await self._finish(send, call, 504, error_body(proto, 504, "the upstream timed out"))
            return None
        except httpx.HTTPError as exc:
            call.upstream_s = time.perf_counter() - sent
            msg = f"the upstream cannot be reached: {type(exc).__name__}"
            await self._finish(send, call, 502, error_body(proto, 502, msg))
            return None
        try:
            status = response.status_code
            if stream and status == 200:
                return await self._stream(
                    send, call, response, sent, restricted, wants_usage, extra_headers or [],
                    receive,
                )  # fmt: skip
            try:
                body = await response.aread()
            except httpx.TimeoutException:
                call.upstream_s = time.perf_counter() - sent
                await self._finish(
                    send, call, 504, error_body(proto, 504, "the upstream timed out")
                )
                return None
            except httpx.HTTPError as exc:
                call.upstream_s = time.perf_counter() - sent
                msg = f"the upstream broke off its answer: {type(exc).__name__}"
                await self._finish(send, call, 502, error_body(proto, 502, msg))
                return None
            call.upstream_s = time.perf_counter() - sent
            if status in (401, 403) or status >= 500:
                msg = (
                    f"the upstream refused the gateway's credentials (HTTP {status})"
                    if status < 500
                    else f"the upstream failed (HTTP {status})"
                )
                await self._finish(send, call, 502, error_body(proto, 502, msg))
                return None
            outcome = None
            if path != MODELS_PATH and status == 200:
                try:
                    body, outcome = _read_answer(proto, body, restricted)
                except Exception as exc:  # not an answer of its protocol: the client gets none
                    msg = f"the upstream sent a malformed answer ({type(exc).__name__})"
                    log.warning("call %s: %s: %.300r", call.record["call_id"], msg, exc)
                    await self._finish(send, call, 502, error_body(proto, 502, msg))
                    return None
            passed = [(k, v) for k, v in response.headers.raw if k.lower() in _PASS_HEADERS]
            await self._finish(send, call, status, body, [*passed, *(extra_headers or [])], outcome)
            return outcome
        finally:
            await response.aclose()

    async def _stream(
        self,
        send: Send,
        call: _Call,
        response: httpx.Response,
        sent: float,
        restricted: bool,
        wants_usage: bool,
        extra_headers: list[tuple[bytes, bytes]],
        receive: Receive | None = None,
    ) -> Outcome:
        """Pass the upstream's events through as they arrive. A client that goes away ends the
        stream upstream too, and the record says so (status 499, the text sent until then)."""
        proto = call.proto
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                    (CALL_ID_HEADER, call.record["call_id"].encode()),
                    *extra_headers,
                ],
            }
        )
        reader = StreamReader(proto)
        restrictor = StreamRestrictor(proto) if restricted else None
        buffer = bytearray()
        held: list[bytes] = []  # the stream's last event: sent once the record is on disk
        status, failure = 200, ""
        # the request body has been read, so the next message is the client going away
        gone = asyncio.ensure_future(receive()) if receive is not None else None
        try:
            async for chunk in response.aiter_raw():
                if gone is not None and gone.done():
                    status, failure = 499, "the client disconnected during the stream"
                    break
                if b"\r" in chunk:
                    chunk = chunk.replace(b"\r\n", b"\n")
                buffer += chunk
                out = []
                try:
                    for event in split_events(buffer):
                        pieces = _pass_event(proto, event, reader, restrictor, wants_usage)
                        if _is_last_event(event):
                            held += pieces
                        else:
                            out += pieces
                except Exception as exc:  # an event the reader or the restrictor cannot take
                    status = 502
                    failure = f"the upstream sent a malformed event ({type(exc).__name__})"
                    log.warning("call %s: %s: %.300r", call.record["call_id"], failure, exc)
                if out:
                    await send(
                        {"type": "http.response.body", "body": b"".join(out), "more_body": True}
                    )
                if failure:
                    break
        except httpx.TimeoutException:
            status, failure = 504, "the upstream timed out during the stream"
        except httpx.HTTPError as exc:
            status, failure = 502, f"the upstream broke off the stream: {type(exc).__name__}"
        finally:
            if gone is not None and not gone.done():
                gone.cancel()
        call.upstream_s = time.perf_counter() - sent
        tail = bytes(buffer)
        outcome = reader.result()
        failure = await self._log(call, status, outcome) or failure
        end = stream_error_event(proto, failure) if failure else b"".join(held) + tail
        await send({"type": "http.response.body", "body": end, "more_body": False})
        return outcome


def _parse_for_log(proto: Proto, raw: bytes, record: dict[str, Any]) -> tuple[Request | None, str]:
    """Parse the body and note what the log keeps of it; an unparseable body is kept as text.

    Parsed before authentication, so that refused calls are logged with their prompt too.
    """
    try:
        request = parse_request(proto, raw)
    except BadRequest as exc:
        record["prompt"] = raw[:_RAW_PROMPT_CHARS].decode("utf-8", "replace")
        return None, str(exc)
    record["model"] = request.model
    record["prompt"] = request.prompt
    record["system_prompt"] = request.system_prompt
    return request, ""


def _read_answer(proto: Proto, body: bytes, restricted: bool) -> tuple[bytes, Outcome]:
    """A 200 answer as the client gets it (without reasoning when ``restricted``) and what the log
    keeps of it; raises when it is not a JSON object of the protocol's shape."""
    answer = orjson.loads(body)
    if not isinstance(answer, dict):
        raise TypeError(f"a JSON {type(answer).__name__}, not an object")
    if restricted:
        answer = restrict_response(proto, answer)
        body = orjson.dumps(answer)
    return body, read_answer(proto, answer)


def _is_last_event(event: bytes) -> bool:
    """The event that tells an SDK the answer is complete (OpenAI ``[DONE]``, Anthropic
    ``message_stop``): held back until the call's record is durable."""
    return event.startswith((b"data: [DONE]", b"event: message_stop")) or (
        b'"type":"message_stop"' in event
    )


def _pass_event(
    proto: Proto,
    event: bytes,
    reader: StreamReader,
    restrictor: StreamRestrictor | None,
    wants_usage: bool,
) -> list[bytes]:
    """What to send the client for one upstream event, noting its content for the log."""
    data = event_data(event)
    if data is None or data == b"[DONE]":
        return [event]
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return [event]
    if not isinstance(obj, dict):
        return [event]
    if not wants_usage and obj.get("usage") and not obj.get("choices"):
        reader.feed(obj)  # asked for by the gateway, kept from the client
        return []
    if restrictor is None:
        reader.feed(obj)
        return [event]
    out = []
    for rewritten in restrictor.rewrite(obj):
        reader.feed(rewritten)
        payload = b"data: " + orjson.dumps(rewritten) + b"\n\n"
        if proto == "anthropic":
            payload = b"event: " + str(rewritten.get("type", "")).encode() + b"\n" + payload
        out.append(payload)
    return out


def _limit_headers(buckets: list[Bucket], verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """OpenAI-style ``x-ratelimit-*`` headers: the tighter of key and account limits."""
    req = 0 if verdict.remaining[0] <= verdict.remaining[1] else 1
    tok = 2 if verdict.remaining[2] <= verdict.remaining[3] else 3
    return [
        (b"x-ratelimit-limit-requests", str(int(buckets[req].limit_per_min)).encode()),
        (b"x-ratelimit-remaining-requests", str(verdict.remaining[req]).encode()),
        (b"x-ratelimit-reset-requests", f"{verdict.reset_s[req]:.3f}s".encode()),
        (b"x-ratelimit-limit-tokens", str(int(buckets[tok].limit_per_min)).encode()),
        (b"x-ratelimit-remaining-tokens", str(verdict.remaining[tok]).encode()),
        (b"x-ratelimit-reset-tokens", f"{verdict.reset_s[tok]:.3f}s".encode()),
    ]


async def _read_body(receive: Receive, headers: dict[bytes, bytes], limit: int) -> bytes | None:
    """The request body, or None when it is over ``limit`` bytes."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    all_headers = [*(headers or [_JSON]), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    settings: GuardSettings | None = None,
    *,
    store: StateStore | None = None,
    limiter: RateLimiter | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    spool: Spool | None = None,
) -> Gateway:
    """A gateway for ``settings`` (default: from ``GUARD_*`` variables). Nothing runs until
    startup (ASGI lifespan, or ``async with app.running()``)."""
    from guard.settings import get_settings

    return Gateway(
        settings or get_settings(), store=store, limiter=limiter, transport=transport, spool=spool
    )
