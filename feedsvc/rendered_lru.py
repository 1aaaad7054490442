"""Containers of rendered feeds for one store generation; own nothing else.

``RenderedOnce`` keeps every feed of the grid, each rendered at most once;
``RenderedLru`` keeps tag and author feeds under a byte budget (a site with
5,000 tags has tens of thousands of them, in three formats: far too many to
render up front). Both render a missing value once however many threads ask
for it together (``InFlight``): the others wait for that render.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Generic, Protocol, TypeVar


class Sized(Protocol):
    @property
    def nbytes(self) -> int: ...


V = TypeVar("V")
S = TypeVar("S", bound=Sized)


class InFlight(Generic[V]):
    """Renders running now, by key: a second thread asking for a key waits for the first.

    Keeps nothing once a render ended. ``run(key, lookup, make)`` returns
    ``lookup()`` when it finds the value (another thread may have just kept
    it), else ``make()``, called by exactly one of the threads asking at once;
    the others get its value or its exception.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[Hashable, Future[V | None]] = {}

    def run(
        self, key: Hashable, lookup: Callable[[], V | None], make: Callable[[], V | None]
    ) -> V | None:
        with self._lock:
            running = self._running.get(key)
            if running is None:
                mine: Future[V | None] = Future()
                self._running[key] = mine
        if running is not None:
            return running.result()
        try:
            value = lookup()
            if value is None:
                value = make()
        except BaseException as exc:
            mine.set_exception(exc)
            raise
        finally:
            with self._lock:
                del self._running[key]
        mine.set_result(value)
        return value


class RenderedOnce(Generic[V]):
    """Values by key for ONE store generation, each made at most once; never evicts.

    A key whose ``make`` returns None (no such feed) is not kept: unknown
    names cannot grow it. Reads take no lock; nothing outside touches its fields.
    """

    def __init__(self) -> None:
        self._values: dict[Hashable, V] = {}
        self._inflight: InFlight[V] = InFlight()

    def kept(self, key: Hashable) -> V | None:
        return self._values.get(key)

    def get(self, key: Hashable, make: Callable[[], V | None]) -> V | None:
        """The kept value, else ``make()``'s (made once for threads asking together)."""
        found = self._values.get(key)
        if found is not None:
            return found
        return self._inflight.run(key, lambda: self._values.get(key), lambda: self._keep(key, make))

    def _keep(self, key: Hashable, make: Callable[[], V | None]) -> V | None:
        value = make()
        if value is not None:
            self._values[key] = value
        return value


class RenderedLru(Generic[S]):
    """Values by key, valid for ONE store generation, at most ``budget`` bytes.

    ``get(generation, key, make)`` names the generation the caller read: a
    newer one empties the cache first (its values describe items that may
    have changed), and a value rendered for an older one is returned but not
    kept. Least recently used values leave first once the values' ``nbytes``
    add up to more than ``budget``; a value larger than the whole budget is
    never kept. Thread-safe; nothing outside touches its fields.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._lock = threading.Lock()
        self._generation = -1
        self._values: OrderedDict[Hashable, S] = OrderedDict()
        self._bytes = 0
        self._inflight: InFlight[S] = InFlight()

    def _move_to(self, generation: int) -> bool:
        """Empty the cache for a newer generation; False for an older one (lock held)."""
        if generation > self._generation:
            self._values.clear()
            self._bytes = 0
            self._generation = generation
        return generation == self._generation

    def get(self, generation: int, key: Hashable, make: Callable[[], S | None]) -> S | None:
        """The kept value, else ``make()``'s (rendered once for threads asking together)."""
        found = self._lookup(generation, key)
        if found is not None:
            return found

        def make_and_keep() -> S | None:
            value = make()
            if value is not None:
                self._put(generation, key, value)
            return value

        return self._inflight.run(
            (generation, key), lambda: self._lookup(generation, key), make_and_keep
        )

    def _lookup(self, generation: int, key: Hashable) -> S | None:
        with self._lock:
            if not self._move_to(generation):
                return None
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def _put(self, generation: int, key: Hashable, value: S) -> None:
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
