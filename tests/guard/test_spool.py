"""The durable call log: journals, group commit, rotation, recovery, and failing closed."""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from guard.exceptions import SpoolUnavailable
from guard.journal import (
    FAILED,
    Journal,
    decode_all,
    encode,
    recover_orphans,
    seal,
    segment_path,
)
from guard.spool import Spool, SpoolHooks
from ingest.contract import CALLS_ARROW_SCHEMA
from tests.guard.conftest import Factory, chat, eventually, journal_records, read_segments

pytestmark = pytest.mark.anyio


def record(i: int) -> dict[str, Any]:
    return {
        "call_id": f"c{i}",
        "ts": 1_795_000_000_000_000 + i,
        "account_id": "a",
        "prompt": f"p{i}",
    }


def test_journal_drops_only_a_torn_tail(tmp_path: Path) -> None:
    data = b"".join(encode(record(i)) for i in range(3))
    records, torn = decode_all(data + encode(record(3))[:-2])
    assert [r["call_id"] for r in records] == ["c0", "c1", "c2"] and torn > 0
    corrupt = bytearray(data)
    corrupt[-3] ^= 0xFF  # a flipped byte in the last record fails its CRC
    assert [r["call_id"] for r in decode_all(bytes(corrupt))[0]] == ["c0", "c1"]


def test_seal_writes_the_contract_schema_once(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "journal")
    journal.write(b"".join(encode(record(i)) for i in range(5)), 5)
    journal.close()
    segments = tmp_path / "segments"
    assert seal(journal.path, segments) == (5, 0)
    table = pq.read_table(segment_path(journal.path, segments))
    assert table.schema.equals(CALLS_ARROW_SCHEMA)
    assert table.column("call_id").to_pylist() == [f"c{i}" for i in range(5)]
    assert not journal.path.exists()
    assert [p.name for p in segments.iterdir()] == [segment_path(journal.path, segments).name]


def test_a_crash_between_segment_and_unlink_does_not_duplicate(tmp_path: Path) -> None:
    journal = Journal.create(tmp_path / "journal")
    journal.write(encode(record(1)), 1)
    journal.close()
    kept = tmp_path / "copy"
    shutil.copy(journal.path, kept)
    seal(journal.path, tmp_path / "segments")
    shutil.copy(kept, journal.path)  # as if the unlink never happened
    assert recover_orphans(tmp_path / "journal", tmp_path / "segments", set())[0][1] == 1
    assert read_segments(tmp_path).num_rows == 1


def test_recovery_skips_journals_a_live_writer_holds(tmp_path: Path) -> None:
    live = Journal.create(tmp_path / "journal")
    live.write(encode(record(1)), 1)
    dead = Journal.create(tmp_path / "journal")
    dead.write(encode(record(2)), 1)
    dead.close()
    done = recover_orphans(tmp_path / "journal", tmp_path / "segments", set())
    assert [path for path, _, _ in done] == [dead.path]
    assert live.path.exists()
    live.close()


async def test_group_commit_writes_many_records_per_fsync(tmp_path: Path) -> None:
    writes: list[int] = []

    def counting_write(fd: int, data: Any) -> int:
        writes.append(len(data))
        return os.write(fd, data)

    spool = Spool(tmp_path, write=counting_write)
    await spool.start()
    writes.clear()  # the start-up probe
    await asyncio.gather(*(spool.append(record(i)) for i in range(200)))
    assert len(journal_records(tmp_path)) == 200  # all on disk when append returned
    assert len(writes) < 20
    await spool.close()
    assert read_segments(tmp_path).num_rows == 200


async def test_rotation_by_size_and_by_age(tmp_path: Path) -> None:
    sealed: list[int] = []
    spool = Spool(
        tmp_path,
        max_bytes=1000,
        max_age_s=0.3,
        probe_s=0.05,
        hooks=SpoolHooks(sealed=sealed.append),
    )
    await spool.start()
    for i in range(40):
        await spool.append(record(i))

    def segments() -> int:
        return len(list((tmp_path / "segments").glob("*.parquet")))

    await eventually(lambda: sum(sealed) == 40 - spool._journal.records)  # type: ignore[union-attr]
    by_size = segments()
    assert by_size >= 2
    await spool.append(record(99))
    await eventually(lambda: segments() == by_size + 1)  # by age
    await spool.close()
    assert read_segments(tmp_path).num_rows == 41 == sum(sealed)


class Disk:
    """A writer that fails with ENOSPC while ``full`` is set."""

    def __init__(self) -> None:
        self.full = False

    def write(self, fd: int, data: Any) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)


async def test_failed_write_fails_the_waiters_then_recovers(tmp_path: Path) -> None:
    disk = Disk()
    spool = Spool(tmp_path, probe_s=0.05, write=disk.write)
    await spool.start()
    await spool.append(record(1))
    disk.full = True
    with pytest.raises(SpoolUnavailable, match="No space left"):
        await spool.append(record(2))
    with pytest.raises(SpoolUnavailable):
        await spool.append(record(3))
    assert not spool.available
    disk.full = False
    await eventually(lambda: spool.available)
    await spool.append(record(4))
    await spool.close()
    assert sorted(read_segments(tmp_path).column("call_id").to_pylist()) == ["c1", "c4"]


async def test_gateway_fails_closed_when_the_spool_is_not_a_folder(
    make_gateway: Factory, key: str, settings: Any
) -> None:
    settings.spool.write_text("a file where the spool folder should be")
    app, client = await make_gateway()
    r = await client.post(
        "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {key}"}
    )
    assert r.status_code == 503
    assert "cannot be written" in r.json()["error"]["message"]
    assert (await client.get("/healthz")).status_code == 503
    assert "guard_spool_unavailable_rejections_total 1.0" in (await client.get("/metrics")).text
    settings.spool.unlink()
    await eventually(lambda: app.spool.available)
    r = await client.post(
        "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200
    assert len(journal_records(settings.spool)) == 1


async def test_gateway_answers_503_when_a_write_fails_and_logs_only_what_it_served(
    make_gateway: Factory, key: str, settings: Any
) -> None:
    disk = Disk()
    spool = Spool(settings.spool, probe_s=0.05, write=disk.write)
    app, client = await make_gateway(inject={"spool": spool})
    headers = {"authorization": f"Bearer {key}"}
    ok = await client.post("/v1/chat/completions", json=chat("first"), headers=headers)
    disk.full = True
    refused = [
        await client.post("/v1/chat/completions", json=chat("x", stream=stream), headers=headers)
        for stream in (False, True, False)
    ]
    assert refused[0].status_code == 503
    assert "error" in refused[1].text  # a stream cut short by the failure ends with an error event
    assert refused[2].status_code == 503
    metrics = (await client.get("/metrics")).text
    assert "guard_spool_write_errors_total 1.0" in metrics
    assert "guard_records_lost_total 0.0" in metrics
    disk.full = False
    await eventually(lambda: spool.available)
    again = await client.post("/v1/chat/completions", json=chat("after"), headers=headers)
    assert again.status_code == 200
    await app.shutdown()
    logged = read_segments(settings.spool).to_pylist()
    assert [r["prompt"] for r in logged] == ["first", "after"]
    assert {r["call_id"] for r in logged} == {
        ok.headers["x-distillguard-call-id"],
        again.headers["x-distillguard-call-id"],
    }


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    """A 512 KiB tmpfs (needs root and mount rights; skipped elsewhere)."""
    where = tmp_path / "tiny"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


async def test_gateway_on_a_full_disk_fails_closed_and_recovers(
    tiny_disk: Path, make_gateway: Factory, key: str
) -> None:
    app, client = await make_gateway(spool=tiny_disk / "spool")
    headers = {"authorization": f"Bearer {key}"}
    assert (
        await client.post("/v1/chat/completions", json=chat(), headers=headers)
    ).status_code == 200
    filler = tiny_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    statuses = [
        (
            await client.post("/v1/chat/completions", json=chat("y" * 5000), headers=headers)
        ).status_code
        for _ in range(5)
    ]
    assert 503 in statuses
    assert statuses[statuses.index(503) :] == [503] * (5 - statuses.index(503))
    filler.unlink()
    await eventually(lambda: app.spool.available)
    assert (
        await client.post("/v1/chat/completions", json=chat(), headers=headers)
    ).status_code == 200
    await app.shutdown()
    assert read_segments(tiny_disk / "spool").num_rows == 1 + statuses.count(200) + 1


async def test_a_stream_whose_record_cannot_be_written_never_says_done(
    make_gateway: Factory, key: str, settings: Any
) -> None:
    disk = Disk()

    class Upstream(httpx.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            yield b'data: {"choices":[{"index":0,"delta":{"content":"hi"}}]}\n\n'
            disk.full = True  # the disk fills while the answer streams
            yield b"data: [DONE]\n\n"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Upstream(), headers={"content-type": "text/event-stream"})

    spool = Spool(settings.spool, probe_s=0.05, write=disk.write)
    _, client = await make_gateway(transport=httpx.MockTransport(handler), inject={"spool": spool})
    r = await client.post(
        "/v1/chat/completions", json=chat(stream=True), headers={"authorization": f"Bearer {key}"}
    )
    assert '"hi"' in r.text
    assert "[DONE]" not in r.text  # an SDK would take [DONE] for a complete, logged answer
    assert "cannot be written" in r.text


def unfit(i: int) -> dict[str, Any]:
    """A record whose JSON is framed and checksummed but does not fit the contract's schema."""
    return {**record(i), "prompt_tokens": "many"}


def orphan(journals: Path, *records: dict[str, Any]) -> Journal:
    """A journal left by a process that died."""
    journal = Journal.create(journals)
    journal.write(b"".join(encode(r) for r in records), len(records))
    journal.close()
    return journal


async def test_a_journal_that_cannot_be_sealed_is_set_aside_and_the_others_recovered(
    tmp_path: Path,
) -> None:
    bad = orphan(tmp_path / "journal", record(1), unfit(2))
    good = orphan(tmp_path / "journal", record(3))
    assert sorted([good.path, bad.path]) == [bad.path, good.path]  # the bad one comes first
    kept = bad.path.read_bytes()
    sealed: list[int] = []
    set_aside: list[str] = []
    hooks = SpoolHooks(sealed=sealed.append, unsealable=lambda: set_aside.append("x"))
    spool = Spool(tmp_path, hooks=hooks)
    await spool.start()
    await eventually(lambda: sealed == [1])
    assert read_segments(tmp_path).column("call_id").to_pylist() == ["c3"]
    moved = tmp_path / "journal" / FAILED / bad.path.name
    assert moved.read_bytes() == kept  # nothing deleted, for an operator to look at
    assert not bad.path.exists() and set_aside == ["x"]
    await spool.close()
    again = Spool(tmp_path, hooks=hooks)  # a restart does not try it again
    await again.start()
    await again.close()
    assert set_aside == ["x"] and moved.exists()


async def test_an_own_journal_that_cannot_be_sealed_is_set_aside_at_close(tmp_path: Path) -> None:
    set_aside: list[str] = []
    spool = Spool(tmp_path, hooks=SpoolHooks(unsealable=lambda: set_aside.append("x")))
    await spool.start()
    await spool.append(unfit(1))
    await spool.close()
    assert set_aside == ["x"]
    failed = list((tmp_path / "journal" / FAILED).glob("*.journal"))
    assert [decode_all(p.read_bytes())[0] for p in failed] == [[unfit(1)]]
    assert list((tmp_path / "journal").glob("*.journal")) == []


async def test_gateway_counts_a_journal_set_aside_and_serves_on(
    make_gateway: Factory, key: str, settings: Any
) -> None:
    bad = orphan(settings.spool / "journal", unfit(1))
    good = orphan(settings.spool / "journal", record(2))
    app, client = await make_gateway()
    await eventually(lambda: not good.path.exists())
    needle = "guard_spool_journals_set_aside_total 1.0"
    for _ in range(100):
        if needle in (text := (await client.get("/metrics")).text):
            break
        await asyncio.sleep(0.02)
    assert needle in text
    assert (settings.spool / "journal" / FAILED / bad.path.name).exists()
    r = await client.post(
        "/v1/chat/completions", json=chat(), headers={"authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200
    await app.shutdown()
    assert read_segments(settings.spool).num_rows == 2  # the recovered record and the call


async def test_a_failed_rotation_closes_the_old_journal_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, max_bytes=1, probe_s=0.05)  # every write rotates
    await spool.start()
    assert spool._journal is not None
    old_fd = spool._journal.fd
    real_close = os.close
    reused: list[int] = []

    def close(fd: int) -> None:
        real_close(fd)
        if fd == old_fd and not reused:  # another thread opens a file now: it gets that number
            reused.append(os.open(os.devnull, os.O_RDONLY))

    def full(directory: Path) -> Journal:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "close", close)
    monkeypatch.setattr(Journal, "create", staticmethod(full))
    await spool.append(record(1))  # committed; then the rotation cannot open a new journal
    await eventually(lambda: not spool.available)
    assert reused == [old_fd]
    os.fstat(reused[0])  # the unrelated file is still open: its number was not closed again
    real_close(reused[0])
    monkeypatch.undo()
    await eventually(lambda: spool.available)
    await spool.close()
    assert read_segments(tmp_path).column("call_id").to_pylist() == ["c1"]


async def test_spool_available_gauge_follows_the_spool_without_requests(
    make_gateway: Factory, settings: Any
) -> None:
    settings.spool.write_text("a file where the spool folder should be")
    app, client = await make_gateway()
    assert "guard_spool_available 0.0" in (await client.get("/metrics")).text
    settings.spool.unlink()
    await eventually(lambda: app.spool.available)  # the probe reopens it by itself
    assert "guard_spool_available 1.0" in (await client.get("/metrics")).text


async def test_durable_commits_run_on_the_loop_until_the_disk_turns_slow(tmp_path: Path) -> None:
    import threading
    import time

    slow = [0.0]
    threads: list[int] = []

    def write(fd: int, data: Any) -> int:
        threads.append(threading.get_ident())
        time.sleep(slow[0])
        return os.write(fd, data)

    spool = Spool(tmp_path, write=write, inline_commit_s=0.002)
    await spool.start()
    loop_thread = threading.get_ident()
    try:
        threads.clear()  # the start-up probe writes from the I/O thread
        for i in range(5):
            await spool.append(record(i))
        assert set(threads) == {loop_thread}  # a fast disk: no hand-off per commit
        slow[0] = 0.02
        for i in range(12):
            await spool.append(record(100 + i))
        assert threads[-1] != loop_thread  # a slow disk: back to the I/O thread
        slow[0] = 0.0
    finally:
        await spool.close()
    assert len(read_segments(tmp_path).to_pylist()) == 17
