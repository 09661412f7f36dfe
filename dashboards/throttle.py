"""Sign-in throttling: too many failed sign-ins for one username (or from one address) in a
window refuse further attempts until the window has passed, so passwords cannot be guessed at
speed. In memory, per console process.

A username is locked after ``max_failures`` failures within ``window_s``; an address after four
times that (many people may share an office address). A successful sign-in clears its username.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

_ADDRESS_FACTOR = 4
_MAX_KEYS = 100_000


class SignInThrottle:
    """Counts failed sign-ins per username and per address over a sliding window."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until this username may try again from this address (0: it may now)."""
        now = self._clock()
        wait = 0.0
        with self._lock:
            for key, limit in self._keys(username, address):
                times = self._recent(key, now)
                if len(times) >= limit:
                    wait = max(wait, self.window_s - (now - times[-limit]))
        return math.ceil(wait) if wait > 0 else 0

    def failed(self, username: str, address: str) -> None:
        now = self._clock()
        with self._lock:
            if len(self._failures) >= _MAX_KEYS:  # forget the stalest half rather than grow
                for key in sorted(self._failures, key=lambda k: self._failures[k][-1])[
                    : _MAX_KEYS // 2
                ]:
                    del self._failures[key]
            for key, _ in self._keys(username, address):
                self._failures.setdefault(key, deque()).append(now)

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop("user:" + username.casefold(), None)

    def _keys(self, username: str, address: str) -> list[tuple[str, int]]:
        keys = [("user:" + username.casefold(), self.max_failures)]
        if address:
            keys.append(("addr:" + address, self.max_failures * _ADDRESS_FACTOR))
        return keys
