"""The console's per-process caches, bounded and thread-safe (handlers run in a thread pool).

* :class:`RunCache`: values derived from one detection run (the cluster map's PCA projection), keyed
  by run id and arguments; a run is one transaction, so its results never change under the key.
* :class:`PromptTexts`: prompt text by prompt hash. The warehouse stores no per-call hash (the
  detectors hash prompts into a temporary table per run), so finding a hash's text means hashing
  every call; this does that once per hash, not on every page view.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from dashboards import queries
from ingest.warehouse import Warehouse


class RunCache:
    """The ``maxsize`` most recently used values; ``computed`` counts the misses computed."""

    def __init__(self, maxsize: int = 8) -> None:
        self.maxsize = maxsize
        self.computed = 0
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
        value = compute()  # outside the lock: a slow fit does not hold up other pages
        with self._lock:
            self.computed += 1
            self._values[key] = value
            while len(self._values) > self.maxsize:
                self._values.popitem(last=False)
        return value


class PromptTexts:
    """``prompt hash -> text``, least recently used dropped past ``max_chars`` characters."""

    def __init__(self, max_chars: int = 32_000_000) -> None:
        self.max_chars = max_chars
        self.scans = 0  # queries that hashed the calls table
        self._texts: OrderedDict[str, str] = OrderedDict()
        self.chars = 0
        self._lock = threading.Lock()

    def resolve(self, wh: Warehouse, hashes: Iterable[str]) -> dict[str, str]:
        """The text of each hash that some call has (hashes with no call are left out)."""
        wanted = set(hashes)
        with self._lock:
            found = {h: self._texts[h] for h in wanted if h in self._texts}
            for h in found:
                self._texts.move_to_end(h)
        missing = sorted(wanted - found.keys())
        if missing:
            looked_up = queries.prompt_texts(wh, missing)
            found.update(looked_up)
            with self._lock:
                self.scans += 1
                for h, text in looked_up.items():
                    if h not in self._texts:
                        self._texts[h] = text
                        self.chars += len(text)
                while self.chars > self.max_chars and self._texts:
                    _, dropped = self._texts.popitem(last=False)
                    self.chars -= len(dropped)
        return found
