"""Rate limits per key and per account, on requests and tokens per minute, by GCRA.

Each limit is a bucket: ``interval`` seconds per unit, ``capacity`` units of burst. A bucket's only
state is its theoretical arrival time (TAT). A request costs one unit of each request bucket; token
buckets are checked (not in debt) before a call and charged the real token count after it, so a
large answer pushes its caller into debt and later calls wait for it to be repaid.

:class:`MemoryLimiter` keeps TATs in one process; :class:`RedisLimiter` keeps them in Redis and
checks or charges all of a call's buckets in one atomic Lua script (one round trip), so the limits
hold across workers and replicas.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Bucket:
    """One limit: ``name`` is its storage key; ``cost`` the units this call takes (0 = peek)."""

    name: str
    limit_per_min: float
    capacity: float
    cost: float

    @property
    def interval(self) -> float:
        """Seconds per unit."""
        return 60.0 / self.limit_per_min


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check: ``remaining``/``reset_s`` are per bucket, in the order given;
    ``refused`` is the index of the bucket that refused the call (the one with the longest wait
    when several did), None when it is allowed."""

    allowed: bool
    retry_after_s: float
    remaining: tuple[int, ...]
    reset_s: tuple[float, ...]
    refused: int | None = None


class RateLimiter(Protocol):
    """Checks a call against its buckets and charges it afterwards."""

    async def check(self, buckets: list[Bucket]) -> Verdict: ...

    async def charge(self, buckets: list[Bucket]) -> None: ...

    async def aclose(self) -> None: ...


def _evaluate(tats: list[float], buckets: list[Bucket], now: float) -> tuple[Verdict, list[float]]:
    """The GCRA decision for ``buckets`` whose stored TATs are ``tats``; returns the new TATs."""
    refused: int | None = None
    retry = 0.0
    news: list[float] = []
    remaining: list[int] = []
    resets: list[float] = []
    for i, (tat, bucket) in enumerate(zip(tats, buckets, strict=True)):
        new = max(tat, now) + bucket.cost * bucket.interval
        window = bucket.capacity * bucket.interval
        if new - now > window and (refused is None or new - now - window > retry):
            refused, retry = i, new - now - window
        news.append(new)
        remaining.append(max(0, math.floor((window - (new - now)) / bucket.interval)))
        resets.append(max(0.0, new - now))
    verdict = Verdict(refused is None, retry, tuple(remaining), tuple(resets), refused)
    return verdict, news


class MemoryLimiter:
    """GCRA buckets in this process's memory (one worker).

    A bucket whose TAT has passed is full again and holds nothing worth keeping. Once more than
    ``sweep_above`` buckets are kept, a sweep forgets those; the next sweep waits until the count
    has doubled since, so sweeping costs each call amortised O(1) however many buckets are live.
    """

    def __init__(self, clock: Any = time.monotonic, sweep_above: int = 100_000) -> None:
        self._tats: dict[str, float] = {}
        self._clock = clock
        self._sweep_above = sweep_above
        self._sweep_at = sweep_above

    async def check(self, buckets: list[Bucket]) -> Verdict:
        now = self._clock()
        verdict, news = _evaluate([self._tats.get(b.name, 0.0) for b in buckets], buckets, now)
        if verdict.allowed:
            for bucket, new in zip(buckets, news, strict=True):
                if bucket.cost:
                    self._tats[bucket.name] = new
        if len(self._tats) > self._sweep_at:
            self._sweep(now)
        return verdict

    def _sweep(self, now: float) -> None:
        """Forget the buckets that are full again; the next sweep waits for twice as many."""
        self._tats = {k: v for k, v in self._tats.items() if v > now}
        self._sweep_at = max(self._sweep_above, 2 * len(self._tats))

    async def charge(self, buckets: list[Bucket]) -> None:
        now = self._clock()
        for b in buckets:
            self._tats[b.name] = max(self._tats.get(b.name, 0.0), now) + b.cost * b.interval

    async def aclose(self) -> None:
        return None


# KEYS: bucket names. ARGV[1]: "check" or "charge"; then per bucket: interval_ms, capacity, cost.
# A check returns allowed, retry_ms, the refusing bucket's 0-based index (-1: none), then per
# bucket: remaining, reset_ms. Time comes from the Redis server, so every worker and replica
# shares one clock.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local n = #KEYS
local tats = {}
for i = 1, n do
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  tats[i] = tat
end
if ARGV[1] == 'charge' then
  for i = 1, n do
    local new = tats[i] + tonumber(ARGV[(i - 1) * 3 + 4]) * tonumber(ARGV[(i - 1) * 3 + 2])
    redis.call('SET', KEYS[i], tostring(new), 'PX', math.ceil(new - now) + 1000)
  end
  return {1, '0'}
end
local allowed = 1
local retry = 0
local refused = -1
local out = {}
local news = {}
for i = 1, n do
  local interval = tonumber(ARGV[(i - 1) * 3 + 2])
  local window = tonumber(ARGV[(i - 1) * 3 + 3]) * interval
  local new = tats[i] + tonumber(ARGV[(i - 1) * 3 + 4]) * interval
  news[i] = new
  if new - now > window then
    allowed = 0
    if refused < 0 or new - now - window > retry then
      retry = new - now - window
      refused = i - 1
    end
  end
  local left = math.floor((window - (new - now)) / interval)
  if left < 0 then left = 0 end
  out[#out + 1] = left
  out[#out + 1] = tostring(new - now)
end
if allowed == 1 then
  for i = 1, n do
    if tonumber(ARGV[(i - 1) * 3 + 4]) > 0 then
      redis.call('SET', KEYS[i], tostring(news[i]), 'PX', math.ceil(news[i] - now) + 1000)
    end
  end
end
local result = {allowed, tostring(retry), refused}
for i = 1, #out do result[#result + 1] = out[i] end
return result
"""


def _argv(mode: str, buckets: list[Bucket]) -> list[Any]:
    args: list[Any] = [mode]
    for b in buckets:
        args += [repr(b.interval * 1000.0), repr(b.capacity), repr(b.cost)]
    return args


class RedisLimiter:
    """GCRA buckets in Redis, checked and charged atomically by one Lua script per call."""

    def __init__(self, url: str) -> None:
        import redis.asyncio as aioredis

        self._redis = aioredis.Redis.from_url(url)
        self._script = self._redis.register_script(_LUA)

    async def check(self, buckets: list[Bucket]) -> Verdict:
        raw = await self._script(keys=[b.name for b in buckets], args=_argv("check", buckets))
        allowed, retry, refused, *rest = raw
        remaining = tuple(int(x) for x in rest[0::2])
        resets = tuple(float(x) / 1000.0 for x in rest[1::2])
        index = int(refused)
        refused_at = index if index >= 0 else None
        return Verdict(bool(int(allowed)), float(retry) / 1000.0, remaining, resets, refused_at)

    async def charge(self, buckets: list[Bucket]) -> None:
        await self._script(keys=[b.name for b in buckets], args=_argv("charge", buckets))

    async def aclose(self) -> None:
        await self._redis.aclose()
