"""A byte-bounded LRU of rendered feeds for one store generation; owns nothing else.

Tag and author feeds are far too many to render up front (a site with 5,000
tags has tens of thousands of them, in three formats): ``FeedCache`` renders
one on its first request and keeps it here. Memory stays under a byte budget
(``feeds.term_cache_bytes``) however many feeds are asked for.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


V = TypeVar("V", bound=Sized)


class RenderedLru(Generic[V]):
    """Values by key, valid for ONE store generation, at most ``budget`` bytes.

    ``get(generation, key)`` and ``put(generation, key, value)`` name the
    generation the caller read: a newer one empties the cache first (its
    values describe items that may have changed), and a value rendered for an
    older one is dropped rather than stored. Least recently used values leave
    first once the values' ``nbytes`` add up to more than ``budget``; a value
    larger than the whole budget is never kept. Thread-safe; nothing outside
    touches its fields.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._generation = -1
        self._values: OrderedDict[Hashable, V] = OrderedDict()
        self._bytes = 0

    def _move_to(self, generation: int) -> bool:
        """Empty the cache for a newer generation; False for an older one (lock held)."""
        if generation > self._generation:
            self._values.clear()
            self._bytes = 0
            self._generation = generation
        return generation == self._generation

    def get(self, generation: int, key: Hashable) -> V | None:
        with self._lock:
            if not self._move_to(generation):
                return None
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, generation: int, key: Hashable, value: V) -> None:
        size = value.nbytes
        with self._lock:
            if not self._move_to(generation) or size > self._budget:
                return
            old = self._values.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._values[key] = value
            self._bytes += size
            while self._bytes > self._budget:
                _, evicted = self._values.popitem(last=False)
                self._bytes -= evicted.nbytes

    def stats(self) -> tuple[int, int]:
        """(values kept, their bytes): for benchmarks and tests."""
        with self._lock:
            return len(self._values), self._bytes
