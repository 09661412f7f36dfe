"""A lean HTTP/1.1 transport for the shared ``httpx.AsyncClient`` that talks to the upstream.

httpx's default pool (httpcore) scans every pooled connection, with a ``poll`` system call each, on
every request. While this transport was built, the gateway's server-side CPU per call at 200
requests a second was about 4.3 ms with httpcore and 0.7 ms with this transport (a one-off
comparison that ``benchmarks/gateway.py`` does not repeat). This transport keeps idle keep-alive
connections in a LIFO stack per origin, writes each request in one ``write`` and parses responses
with ``httptools`` (the C parser uvicorn uses). Bodies are streamed as they arrive, with
back-pressure.

It plugs in as ``httpx.AsyncClient(transport=LeanTransport(...))``: requests, responses, timeouts
and errors stay httpx's own types (``ConnectError``, ``ConnectTimeout``, ``ReadTimeout``,
``ReadError``, ``RemoteProtocolError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator
from typing import cast

import httptools
import httpx

_HIGH_WATER = 1 << 20
Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One upstream connection; carries one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.error: BaseException | None = None
        self._reset()

    def _reset(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.received_any = False
        self.paused = False
        self.wakeup = asyncio.Event()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.error = httpx.RemoteProtocolError(f"malformed upstream response: {exc}")
            self.close()
        if self.buffered > _HIGH_WATER and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()
        self.wakeup.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            self.error = httpx.ReadError(f"the upstream closed the connection: {exc or 'EOF'}")
        self.wakeup.set()

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = bool(self.parser.should_keep_alive())

    # use
    def send(self, data: bytes) -> None:
        self._reset()
        assert self.transport is not None
        self.transport.write(data)

    async def wait(self, timeout: float) -> None:
        """Until something arrives (or the connection ends); ``ReadTimeout`` after ``timeout``."""
        self.wakeup.clear()
        try:
            async with asyncio.timeout(timeout):
                await self.wakeup.wait()
        except TimeoutError:
            raise httpx.ReadTimeout(f"no answer from the upstream within {timeout} s") from None

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport and not self.closed:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection as it arrives."""

    def __init__(self, pool: LeanTransport, origin: Origin, conn: _Connection, timeout: float):
        self.pool, self.origin, self.conn, self.timeout = pool, origin, conn, timeout
        self.done = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self.conn
        while True:
            if conn.chunks:
                yield conn.take()
                continue
            if conn.complete:
                break
            if conn.error is not None:
                raise conn.error
            await conn.wait(self.timeout)

    async def aclose(self) -> None:
        if self.done:
            return
        self.done = True
        if self.conn.reusable() and not self.conn.chunks:
            self.pool.release(self.origin, self.conn)
        else:
            self.conn.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive to any number of origins; ``http`` and ``https``."""

    def __init__(
        self,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 600.0,
        max_idle_per_origin: int = 512,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle_per_origin
        self._ssl = ssl_context
        self._idle: dict[Origin, list[_Connection]] = {}

    def release(self, origin: Origin, conn: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self.max_idle:
            idle.append(conn)
        else:
            conn.close()

    async def _open(self, origin: Origin) -> _Connection:
        scheme, host, port = origin
        context = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(_Connection, host, port, ssl=context)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        return conn

    def _checkout(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed:
                return conn
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = (url.scheme, url.host, port)
        body = await request.aread()
        lines = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            lines += [name, b": ", value, b"\r\n"]
        lines.append(b"\r\n")
        data = b"".join(lines) + body
        timeout = request.extensions.get("timeout", {}).get("read") or self.read_timeout
        conn = await self._exchange(origin, data, timeout)
        return httpx.Response(
            conn.parser.get_status_code(),
            headers=conn.headers,
            stream=_Body(self, origin, conn, timeout),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def _exchange(self, origin: Origin, data: bytes, timeout: float) -> _Connection:
        """Send ``data`` and wait for the response head; retry once on a stale connection."""
        for attempt in (0, 1):
            conn = self._checkout(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._open(origin)
            conn.send(data)
            try:
                while not conn.head_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(timeout)
            except httpx.ReadError:
                conn.close()
                if reused and not conn.received_any and attempt == 0:
                    continue  # a stale keep-alive connection: once more on a fresh one
                raise
            except BaseException:
                conn.close()
                raise
            return conn
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                with contextlib.suppress(Exception):
                    conn.close()
        self._idle.clear()
