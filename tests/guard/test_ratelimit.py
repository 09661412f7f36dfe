"""GCRA rate limits: the algorithm with a fake clock, and the Redis script against real Redis."""

from __future__ import annotations

import uuid

import pytest

from guard.ratelimit import Bucket, MemoryLimiter, RedisLimiter

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_burst_then_steady_rate_without_window_edges() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock)
    bucket = [Bucket("k", 60, 5, 1)]  # 1 a second, bursts of 5
    allowed = [(await limiter.check(bucket)).allowed for _ in range(7)]
    assert allowed == [True] * 5 + [False] * 2
    verdict = await limiter.check(bucket)
    assert verdict.retry_after_s == pytest.approx(1.0)
    # over any 10 s, at most burst + 10 pass: no double burst at a window boundary
    passed = 0
    for _ in range(100):
        clock.now += 0.1
        passed += (await limiter.check(bucket)).allowed
    assert passed == 10


async def test_all_buckets_must_allow_and_only_then_any_is_charged() -> None:
    limiter = MemoryLimiter(Clock())
    key = Bucket("key", 60, 10, 1)
    account = Bucket("acct", 60, 2, 1)
    assert [(await limiter.check([key, account])).allowed for _ in range(3)] == [True, True, False]
    verdict = await limiter.check([key])
    assert verdict.remaining == (7,)  # the refused call did not cost the key anything


async def test_tokens_are_charged_after_the_call() -> None:
    limiter = MemoryLimiter(Clock())
    peek = [Bucket("tok", 600, 100, 0)]
    assert (await limiter.check(peek)).allowed
    await limiter.charge([Bucket("tok", 600, 100, 150)])  # 50 tokens of debt
    verdict = await limiter.check(peek)
    assert not verdict.allowed and verdict.retry_after_s == pytest.approx(5.0)


async def test_redis_limiter_matches_the_algorithm() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:6379/0")
    name = f"dgtest:{uuid.uuid4().hex}"
    try:
        bucket = [Bucket(name + ":r", 60, 3, 1), Bucket(name + ":t", 600, 100, 0)]
        verdicts = [await limiter.check(bucket) for _ in range(4)]
        assert [v.allowed for v in verdicts] == [True, True, True, False]
        assert verdicts[0].remaining == (2, 100)
        assert 0.9 < verdicts[3].retry_after_s <= 1.0
        await limiter.charge([Bucket(name + ":t", 600, 100, 200)])
        assert not (await limiter.check([bucket[1]])).allowed
    finally:
        await limiter.aclose()


async def test_the_verdict_names_the_bucket_that_refused() -> None:
    limiter = MemoryLimiter(Clock())
    requests, tokens = Bucket("req", 60, 2, 1), Bucket("tok", 60, 10, 0)
    await limiter.charge([Bucket("tok", 60, 10, 30)])  # 30 tokens: 20 past the burst
    verdict = await limiter.check([requests, tokens])
    assert not verdict.allowed and verdict.refused == 1
    assert verdict.remaining[0] == 1  # the request bucket had room: it did not refuse
    assert (await limiter.check([requests])).refused is None
    # when several refuse, the one that makes the caller wait longest is named
    await limiter.check([requests])
    verdict = await limiter.check([requests, tokens])
    assert (verdict.refused, verdict.retry_after_s) == (1, pytest.approx(20.0))


async def test_redis_verdict_names_the_bucket_that_refused() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:6379/0")
    name = f"dgtest:{uuid.uuid4().hex}"
    try:
        requests, tokens = Bucket(name + ":r", 60, 2, 1), Bucket(name + ":t", 60, 10, 0)
        await limiter.charge([Bucket(name + ":t", 60, 10, 30)])
        verdict = await limiter.check([requests, tokens])
        assert not verdict.allowed and verdict.refused == 1 and verdict.remaining[0] == 1
        assert (await limiter.check([requests])).refused is None
        await limiter.check([requests])
        assert (await limiter.check([requests])).refused == 0
    finally:
        await limiter.aclose()


async def test_many_live_buckets_do_not_make_each_check_scan_them_all() -> None:
    compared = [0]

    class Now(float):
        """The clock's time, counting every comparison made with it (a sweep makes one per
        bucket it looks at)."""

        def _count(self) -> float:
            compared[0] += 1
            return float(self)

        def __lt__(self, other: float) -> bool:
            return self._count() < other

        def __gt__(self, other: float) -> bool:
            return self._count() > other

        def __le__(self, other: float) -> bool:
            return self._count() <= other

        def __ge__(self, other: float) -> bool:
            return self._count() >= other

    limiter = MemoryLimiter(lambda: Now(1000.0), sweep_above=1000)
    for i in range(1000):  # 1000 callers in debt for 100 s: nothing can be forgotten
        await limiter.charge([Bucket(f"live{i}", 60, 1, 100)])
    compared[0] = 0
    checks = 1000
    for i in range(checks):
        assert (await limiter.check([Bucket(f"new{i}", 60, 5, 1)])).allowed
    # one sweep of ~1000 buckets in all, not one per check (that would be over a million)
    assert compared[0] < 5 * checks


async def test_idle_buckets_are_still_forgotten() -> None:
    clock = Clock()
    limiter = MemoryLimiter(clock, sweep_above=100)
    for i in range(150):
        await limiter.check([Bucket(f"old{i}", 60, 5, 1)])
    clock.now += 61  # every bucket is full again
    for i in range(100):
        await limiter.check([Bucket(f"new{i}", 60, 5, 1)])
    assert len(limiter._tats) < 150
    assert all(not name.startswith("old") for name in limiter._tats)
