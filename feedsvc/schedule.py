"""The timer that brings scheduled items into the feeds and takes expired ones out.

Owns *when* the store's ``release`` runs: at the next moment an item enters
or leaves the feeds, with no scan. One ``Releaser`` runs per deployment, in
the watcher process (``feedsvc watch``, or the watcher ``feedsvc serve``
starts); web processes and other instances on the same PostgreSQL store see
the result through the store's generation, exactly as they see a scan.
*Which* items are listed at a moment is ``feedsvc.dates.is_listed``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from feedsvc.errors import StoreError
from feedsvc.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How often the generation is read to learn of items another process wrote
# (a refresh in a web worker, a scan on another instance): one cheap read.
POLL_SECONDS = 1.0


def _nothing() -> None:
    return None


class Releaser:
    """Sleeps until the next scheduled moment the store knows of, then releases.

    The moment is read again whenever the store's generation moves, since a
    scan anywhere may have written a new scheduled item; the generation is
    checked every ``poll_seconds``. ``after`` runs when an item entered or
    left the feeds (WebSub then notifies the feeds that changed).
    """

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        after: Callable[[], None] = _nothing,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._store = store
        self._clock = clock
        self._after = after
        self._poll = poll_seconds
        self._generation: int | None = None
        self._next: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def next_change(self) -> datetime | None:
        """The moment this timer is set for, if any."""
        return self._next

    def tick(self) -> float:
        """Release what is due now; return the seconds to wait before the next tick."""
        now = self._clock()
        try:
            generation = self._store.generation()
            due = self._next is not None and now >= self._next
            if generation != self._generation or due:
                released = self._store.release(now)
                self._next = self._store.next_change(now)
                if released != generation:
                    log.info("scheduled items entered or left the feeds at %s", now.isoformat())
                    self._after()
                self._generation = released
        except StoreError as exc:
            log.warning("cannot release scheduled items now, trying again: %s", exc)
            return self._poll
        if self._next is None:
            return self._poll
        return max(0.0, min(self._poll, (self._next - now).total_seconds()))

    def start(self) -> None:
        """Run ``tick`` in a background thread until ``stop``."""
        self._thread = threading.Thread(target=self._run, name="feedsvc-releaser", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.tick()):
            pass

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
