"""An open-loop HTTP load generator with evenly spaced arrivals (the wrk2 / vegeta model).

    python benchmarks/tools/loadgen.py URL --rate 200 --seconds 10 --body FILE [--header 'K: V' ...]

Request ``i`` is sent at ``start + i / rate`` whatever happened to earlier ones, each on an idle
keep-alive connection (a new one is opened when none is idle), so the offered rate is fixed and
a slow answer cannot hold back later requests. Prints one JSON object: ``sent``, ``ok`` (2xx),
``statuses``, ``errors``, ``achieved`` (answers per second) and ``latencies_ms`` (send to last
byte, answered requests only). The first ``--warmup`` seconds run at the same rate and are not
counted.

Why not ``hey -q``: hey paces each of its workers with its own ticker, all started together, so
``-c 50 -q 4`` offers 200 requests/s as a burst of 50 simultaneous requests every 250 ms. Measured
here against the mock upstream with no latency at 200 requests/s: ``-c 1 -q 200`` p50 0.3 ms,
``-c 10 -q 20`` 1.0 ms, ``-c 50 -q 4`` 3.4 ms; the latency measured then is mostly queueing
behind the burst, not the server's per-request cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import httptools


class _Conn(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.done: asyncio.Future[int] | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def on_message_complete(self) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_result(self.parser.get_status_code())

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("closed by the server"))

    def _fail(self, exc: BaseException) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)

    def send(self, payload: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.parser = httptools.HttpResponseParser(self)
        self.done = asyncio.get_running_loop().create_future()
        self.transport.write(payload)
        return self.done


async def run(
    url: str, rate: float, seconds: float, warmup: float, body: bytes, headers: list[str]
) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    head = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.netloc}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *headers,
    ]
    payload = ("\r\n".join(head) + "\r\n\r\n").encode() + body
    idle: list[_Conn] = []
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    counted = 0

    async def one(counts: bool) -> None:
        nonlocal counted
        try:
            conn = idle.pop() if idle else None
            while conn is not None and conn.closed:
                conn = idle.pop() if idle else None
            if conn is None:
                _, conn = await loop.create_connection(_Conn, host, port)
            started = time.perf_counter()
            status = await asyncio.wait_for(conn.send(payload), 30)
            elapsed = (time.perf_counter() - started) * 1000.0
        except (OSError, TimeoutError, httptools.HttpParserError) as exc:
            if counts:
                counted += 1
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        if not conn.closed:
            idle.append(conn)
        if counts:
            counted += 1
            statuses[str(status)] = statuses.get(str(status), 0) + 1
            if 200 <= status < 300:
                latencies.append(elapsed)

    total = int((warmup + seconds) * rate)
    first_counted = int(warmup * rate)
    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(i >= first_counted)))
    await asyncio.gather(*tasks)
    for conn in idle:
        if conn.transport is not None:
            conn.transport.close()
    return {
        "sent": total - first_counted,
        "ok": len(latencies),
        "statuses": statuses,
        "errors": errors,
        "achieved": len(latencies) / seconds,
        "latencies_ms": [round(v, 3) for v in latencies],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured duration")
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted lead-in, seconds")
    parser.add_argument("--body", type=Path, required=True, help="file sent as the JSON body")
    parser.add_argument("--header", action="append", default=[], help="'Name: value', repeatable")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        pass
    result = asyncio.run(
        run(args.url, args.rate, args.seconds, args.warmup, args.body.read_bytes(), args.header)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
