"""Fixtures for the gateway: settings in ``tmp_path``, the built-in mock as the upstream (in
process, through ``httpx.ASGITransport``), a running gateway and a client for it."""

from __future__ import annotations

import asyncio
import glob
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from guard.app import Gateway, create_app
from guard.mock import MockSettings, MockUpstream
from guard.settings import GuardSettings
from guard.state import FileStateStore


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> GuardSettings:
    return GuardSettings(
        upstream="http://upstream.test",
        upstream_key_env="GUARD_TEST_UPSTREAM_KEY",
        state=tmp_path / "state.json",
        spool=tmp_path / "spool",
        state_poll_s=0.1,
        upstream_timeout_s=2.0,
    )


@pytest.fixture
def store(settings: GuardSettings) -> FileStateStore:
    return FileStateStore(settings.state)


@pytest.fixture
def key(store: FileStateStore) -> str:
    return store.create_key("acct-1")[1]


@pytest.fixture
def mock() -> MockUpstream:
    return MockUpstream(MockSettings(latency_ms=0.0, api_key="upstream-secret"))


@pytest.fixture
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("GUARD_TEST_UPSTREAM_KEY", "upstream-secret")
    return "upstream-secret"


Factory = Callable[..., Any]


@pytest.fixture
async def make_gateway(
    settings: GuardSettings, mock: MockUpstream, upstream_key: str, key: str
) -> AsyncIterator[Factory]:
    """Start gateways (``make_gateway(**changes)``) that know ``key``; all shut down at the end."""
    running: list[tuple[Gateway, httpx.AsyncClient]] = []

    async def make(
        transport: httpx.AsyncBaseTransport | None = None,
        inject: dict[str, Any] | None = None,
        **changes: Any,
    ) -> tuple[Gateway, httpx.AsyncClient]:
        app = create_app(
            settings.model_copy(update=changes),
            transport=transport or httpx.ASGITransport(app=mock),
            **(inject or {}),
        )
        await app.startup()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")
        running.append((app, client))
        return app, client

    yield make
    for app, client in running:
        await client.aclose()
        if app.started:
            await app.shutdown()


@pytest.fixture
async def gateway(make_gateway: Factory) -> tuple[Gateway, httpx.AsyncClient]:
    app, client = await make_gateway()
    return app, client


def read_segments(spool: Path) -> pa.Table:
    """Every record in the spool's closed segments."""
    files = sorted(glob.glob(str(spool / "segments" / "*.parquet")))
    if not files:
        from ingest.contract import CALLS_ARROW_SCHEMA

        return CALLS_ARROW_SCHEMA.empty_table()
    return pa.concat_tables(pq.read_table(f) for f in files)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds (background work under a loaded machine takes its time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"not true within {timeout} s"
        await asyncio.sleep(0.02)


def journal_records(spool: Path) -> list[dict[str, Any]]:
    """Every committed record in the spool's open journals (what a crash would leave)."""
    from guard.journal import decode_all

    records: list[dict[str, Any]] = []
    for path in sorted((spool / "journal").glob("*.journal")):
        records += decode_all(path.read_bytes())[0]
    return records


def chat(content: str = "What is 2+2?", **extra: Any) -> dict[str, Any]:
    """An OpenAI chat request body."""
    return {"model": "mock-1", "messages": [{"role": "user", "content": content}], **extra}


def message(content: str = "What is 2+2?", **extra: Any) -> dict[str, Any]:
    """An Anthropic messages request body."""
    body = {
        "model": "mock-1",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": content}],
    }
    return {**body, **extra}
