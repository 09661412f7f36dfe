"""The lean upstream transport against real sockets: reuse, stale connections, streaming,
timeouts and refused connections, all surfacing as httpx's own errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from guard.transport import LeanTransport

pytestmark = pytest.mark.anyio
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return head + await reader.readexactly(length)


class Upstream:
    """A raw TCP server; counts the connections it accepted."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1/x"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[Upstream]]]:
    started: list[Upstream] = []

    async def start(handler: Handler) -> Upstream:
        up = Upstream(handler)
        up.server = await asyncio.start_server(up._serve, "127.0.0.1", 0)
        started.append(up)
        return up

    yield start
    for up in started:
        assert up.server is not None
        up.server.close()
        await up.server.wait_closed()


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()


async def test_connections_are_reused(serve: Callable[[Handler], Awaitable[Upstream]]) -> None:
    up = await serve(keep_alive)
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        for _ in range(5):
            r = await client.post(up.url, content=b'{"a":1}')
            assert (r.status_code, r.json()) == (200, {})
    assert up.connections == 1


async def test_a_connection_the_upstream_closed_is_replaced(
    serve: Callable[[Handler], Awaitable[Upstream]],
) -> None:
    async def one_then_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()

    up = await serve(one_then_close)
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        assert (await client.post(up.url, content=b"1")).status_code == 200
        await asyncio.sleep(0.05)
        assert (await client.post(up.url, content=b"2")).status_code == 200
    assert up.connections == 2


async def test_chunked_body_streams_as_it_arrives(
    serve: Callable[[Handler], Awaitable[Upstream]],
) -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for piece in (b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    up = await serve(chunked)
    client = httpx.AsyncClient(transport=LeanTransport())
    async with client, client.stream("POST", up.url, content=b"{}") as r:
        pieces = [piece async for piece in r.aiter_raw()]
    assert pieces == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_silence_is_a_read_timeout(serve: Callable[[Handler], Awaitable[Upstream]]) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(2)

    up = await serve(silent)
    async with httpx.AsyncClient(transport=LeanTransport(), timeout=0.2) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(up.url, content=b"{}")


async def test_refused_and_broken_connections(
    serve: Callable[[Handler], Awaitable[Upstream]],
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    up = await serve(garbage)
    async with httpx.AsyncClient(transport=LeanTransport()) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post("http://127.0.0.1:1/v1/x", content=b"{}")
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(up.url, content=b"{}")
