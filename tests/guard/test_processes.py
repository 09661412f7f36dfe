"""Real processes: the mock upstream and the gateway, driven by the real OpenAI and Anthropic
SDKs; a ``kill -9`` under load; limits holding across 4 workers sharing Redis."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import redis

from distillguard.processes import Server, free_port
from guard.journal import decode_all
from guard.mock import reply_tokens
from guard.state import FileStateStore, RedisStateStore
from tests.guard.conftest import chat, read_segments

pytestmark = pytest.mark.slow
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("mock") / "mock.log"
    env = {"MOCK_UPSTREAM_KEY": "upstream-secret"}
    args = ["mock-upstream", "--latency-ms", "5", "--api-key-env", "MOCK_UPSTREAM_KEY"]
    with Server(args, free_port(), log, env) as mock:
        yield mock.url


def gateway(
    tmp_path: Path, mock_url: str, *extra: str, env: dict[str, str] | None = None
) -> Server:
    args = [
        "gateway", "--upstream", mock_url, "--upstream-key-env", "UPSTREAM_KEY",
        "--spool", str(tmp_path / "spool"), "--state", str(tmp_path / "state.json"), *extra,
    ]  # fmt: skip
    env = {"UPSTREAM_KEY": "upstream-secret", "GUARD_STATE_POLL_S": "0.2", **(env or {})}
    return Server(args, free_port(), tmp_path / "gateway.log", env)


def test_openai_sdk_against_a_real_gateway(tmp_path: Path, mock_url: str) -> None:
    key = FileStateStore(tmp_path / "state.json").create_key("acct-sdk")[1]
    server = gateway(tmp_path, mock_url, env={"GUARD_UPSTREAM_TIMEOUT_S": "1"})
    with server:
        client = openai.OpenAI(api_key=key, base_url=server.url + "/v1", max_retries=0)
        try:
            answer = client.chat.completions.create(
                model="mock-1", messages=[{"role": "user", "content": "sdk one"}]
            )
            assert answer.choices[0].message.content == "".join(reply_tokens("sdk one"))
            assert answer.usage is not None and answer.usage.completion_tokens == 36
            pieces = [
                chunk.choices[0].delta.content or ""
                for chunk in client.chat.completions.create(
                    model="mock-1", messages=[{"role": "user", "content": "sdk two"}], stream=True
                )
            ]
            assert "".join(pieces) == "".join(reply_tokens("sdk two"))
            assert [m.id for m in client.models.list()] == ["mock-1", "mock-reasoner"]
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(
                    api_key="dg-wrong", base_url=server.url + "/v1", max_retries=0
                ).models.list()
            with pytest.raises(openai.APIStatusError) as timeout:
                client.chat.completions.create(
                    model="mock-slow", messages=[{"role": "user", "content": "x"}]
                )
            assert timeout.value.status_code == 504
        finally:
            client.close()
    records = read_segments(tmp_path / "spool").to_pylist()
    assert Counter(r["status_code"] for r in records) == {200: 3, 401: 1, 504: 1}
    streamed = next(r for r in records if r["prompt"] == "sdk two")
    assert streamed["response"] == "".join(reply_tokens("sdk two"))
    assert streamed["completion_tokens"] == 36


def test_anthropic_sdk_against_a_real_gateway(tmp_path: Path, mock_url: str) -> None:
    key = FileStateStore(tmp_path / "state.json").create_key("acct-sdk")[1]
    with gateway(tmp_path, mock_url, "--upstream-protocol", "anthropic") as server:
        client = anthropic.Anthropic(api_key=key, base_url=server.url, max_retries=0)
        try:
            answer = client.messages.create(
                model="mock-1", max_tokens=100, messages=[{"role": "user", "content": "sdk three"}]
            )
            assert answer.content[0].text == "".join(reply_tokens("sdk three"))  # type: ignore[union-attr]
            with client.messages.stream(
                model="mock-1", max_tokens=100, messages=[{"role": "user", "content": "sdk four"}]
            ) as stream:
                text = "".join(stream.text_stream)
                final = stream.get_final_message()
            assert text == "".join(reply_tokens("sdk four"))
            assert final.usage.output_tokens == 36
            FileStateStore(tmp_path / "state.json").set_account_state(
                "acct-sdk", "suspended", "ring"
            )
            time.sleep(1.0)
            with pytest.raises(anthropic.PermissionDeniedError, match="suspended"):
                client.messages.create(
                    model="mock-1", max_tokens=10, messages=[{"role": "user", "content": "x"}]
                )
        finally:
            client.close()
    records = read_segments(tmp_path / "spool").to_pylist()
    assert sorted(r["status_code"] for r in records) == [200, 200, 403]


def _load(url: str, key: str, stop: threading.Event, done: list[str], workers: int = 12) -> None:
    """Send calls until ``stop``; note the call id of every complete answer."""

    async def one_client() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    r = await client.post(
                        "/v1/chat/completions", json=chat(f"load {i}", stream=i % 2 == 0),
                        headers={"authorization": f"Bearer {key}"},
                    )  # fmt: skip
                    body = r.text
                except httpx.HTTPError:
                    await asyncio.sleep(0.01)
                    continue
                complete = body.rstrip().endswith("[DONE]") or body.endswith("}")
                if complete:  # any status: every answered call must have its record
                    done.append(r.headers["x-distillguard-call-id"])

    async def run() -> None:
        await asyncio.gather(*(one_client() for _ in range(workers)))

    asyncio.run(run())


def test_kill_9_under_load_loses_no_answered_call(tmp_path: Path, mock_url: str) -> None:
    key = FileStateStore(tmp_path / "state.json").create_key("acct-load")[1]
    unlimited = {f"GUARD_RPM_PER_{who}": "100000000" for who in ("KEY", "ACCOUNT")}
    server = gateway(tmp_path, mock_url, "--workers", "2", env=unlimited).start()
    done: list[str] = []
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(server.url, key, stop, done))
    loader.start()
    time.sleep(3.0)
    server.kill()  # mid-load, every process at once
    time.sleep(0.3)  # answers already on their way still arrive; nothing new can
    stop.set()
    loader.join()
    answered = len(done)
    assert answered > 20
    journals = list((tmp_path / "spool" / "journal").glob("*.journal"))
    assert journals, "the kill left no journal to recover"
    gateway(tmp_path, mock_url, "--workers", "2").start().stop()  # recover, then seal
    assert list((tmp_path / "spool" / "journal").glob("*.journal")) == []
    ids = read_segments(tmp_path / "spool").column("call_id").to_pylist()
    counts = Counter(ids)
    assert not [i for i, n in counts.items() if n > 1], "a record was written twice"
    missing = set(done) - set(counts)
    assert not missing, f"{len(missing)} answered calls have no record"
    statuses = Counter(read_segments(tmp_path / "spool").column("status_code").to_pylist())
    print(
        f"crash test: {answered} calls answered before kill -9; after recovery {len(ids)} records"
        f" (statuses {dict(statuses)}), none twice, none of the answered missing"
    )


def test_limits_hold_across_four_workers_sharing_redis(tmp_path: Path, mock_url: str) -> None:
    prefix = f"dgtest:{uuid.uuid4().hex}:"
    store = RedisStateStore(REDIS_URL, prefix)
    key = store.create_key("acct-shared")[1]
    store.close()
    env = {"GUARD_REDIS_PREFIX": prefix, "GUARD_RPM_PER_KEY": "60", "GUARD_BURST_S": "5"}
    server = gateway(tmp_path, mock_url, "--workers", "4", "--redis", REDIS_URL, env=env)
    statuses: list[int] = []

    async def hammer() -> None:
        limits = httpx.Limits(max_keepalive_connections=0)  # a new connection, so any worker
        async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=10) as client:

            async def one() -> None:
                r = await client.post(
                    "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {key}"}
                )
                statuses.append(r.status_code)

            for _ in range(6):  # 3 s of 40 concurrent calls every half second
                await asyncio.gather(*(one() for _ in range(40)))
                await asyncio.sleep(0.5)

    try:
        with server:
            started = time.monotonic()
            asyncio.run(hammer())
            elapsed = time.monotonic() - started
            writers = [
                path
                for path in (tmp_path / "spool" / "journal").glob("*.journal")
                if decode_all(path.read_bytes())[0]
            ]
            metrics = httpx.get(server.url + "/metrics").text  # one worker answers for all
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        for name in client.scan_iter(prefix + "*"):
            client.delete(name)
        client.close()
    allowed = statuses.count(200)
    assert len(writers) >= 3, "the calls did not spread over the workers"
    assert set(statuses) == {200, 429}
    # burst 5 + 1 a second; four separate in-memory limits would allow at least 4 x 5
    assert 5 <= allowed <= 5 + elapsed + 1, (allowed, elapsed)
    answered = {
        status: sum(
            float(line.split()[-1])
            for line in metrics.splitlines()
            if line.startswith("guard_requests_total") and f'status="{status}"' in line
        )
        for status in (200, 429)
    }
    assert answered == {200: allowed, 429: statuses.count(429)}
    assert (
        f'guard_rate_limit_rejections_total{{limit="requests"}} {statuses.count(429)}.0' in metrics
    )


def test_a_client_that_leaves_mid_stream_is_logged_as_such(tmp_path: Path) -> None:
    import json
    import socket

    env = {"MOCK_UPSTREAM_KEY": "upstream-secret"}
    args = ["mock-upstream", "--latency-ms", "5", "--tokens-per-second", "20"]
    args += ["--api-key-env", "MOCK_UPSTREAM_KEY"]
    with Server(args, free_port(), tmp_path / "mock.log", env) as slow:
        key = FileStateStore(tmp_path / "state.json").create_key("acct-gone")[1]
        server = gateway(tmp_path, slow.url)
        with server:
            body = json.dumps(chat("leaving early", stream=True)).encode()
            head = (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer {key}"
                f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
                sock.sendall(head.encode() + body)
                received = b""
                while received.count(b"data: ") < 4:  # a few words, not only the role
                    received += sock.recv(65536)
            time.sleep(0.5)  # the gateway notices at the upstream's next event
    [record] = [r for r in read_segments(tmp_path / "spool").to_pylist()]
    full = "".join(reply_tokens("leaving early"))
    assert record["status_code"] == 499
    assert record["response"] and full.startswith(record["response"])
    assert len(record["response"]) < len(full)
