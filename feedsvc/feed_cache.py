"""Keeping rendered feeds per store generation, in each process; not what a feed says.

Owns when feeds are rendered (once per generation and process, ahead of
requests when a poll notices a change) and which generation a process
serves. What a feed contains and its bytes are ``publish``; how a change is
signalled between processes is the signal's (``web/stamp.py``).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple, Protocol, TypeVar

from feedsvc.errors import StoreError
from feedsvc.publish import RenderedFeed, render_feed, term_names
from feedsvc.render import FORMATS, FORMATS_BY_NAME, Format
from feedsvc.rendered_lru import InFlight, RenderedLru, RenderedOnce
from feedsvc.settings import Settings
from feedsvc.store import ReadStore
from feedsvc.types import FACET_CATEGORY, TERM_FACETS, FeedInfo, FeedKey, Item

log = logging.getLogger(__name__)
R = TypeVar("R")

# Feeds rendered ahead (a new generation's grid, ``all_feeds``) are rendered by
# this many threads, a feed's formats in one of them (one read of its items):
# gzip and lxml's serialisation release the GIL, so the second thread's
# compression overlaps the first's Python (bench/README.md). A window of this
# many feeds per thread bounds what waits, rendered, to be yielded in order.
_RENDER_THREADS = 2
_RENDER_WINDOW = 4


def _each_in_threads(work: Callable[[FeedInfo], R], infos: Iterable[FeedInfo]) -> Iterator[R]:
    """``map(work, infos)``, in order, computed by ``_RENDER_THREADS`` threads.

    The first exception is raised here, once the work before it was yielded.
    """
    with ThreadPoolExecutor(_RENDER_THREADS, thread_name_prefix="feedsvc-render") as pool:
        pending: deque[Future[R]] = deque()
        for info in infos:
            pending.append(pool.submit(work, info))
            if len(pending) >= _RENDER_THREADS * _RENDER_WINDOW:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class ChangeSignal(Protocol):
    """A cross-process hint that the store may have a new generation (web/stamp.py)."""

    def read(self) -> int:
        """A value that differs after any ``mark()`` in any process (a few µs at most)."""
        ...

    def mark(self) -> None: ...


class _Generation:
    """One store generation as this process serves it; nothing outside changes it.

    Invariant: the grid was read when the store said ``number`` or later, and
    each feed of it is rendered at most once (``RenderedOnce``), from the
    items the store held then. A newer generation is another object.
    """

    __slots__ = ("_feeds", "_last_items", "_store", "_term_lists", "grid", "number")

    def __init__(self, number: int, store: ReadStore) -> None:
        self.number = number
        self._store = store
        self.grid: dict[FeedKey, FeedInfo] = {info.key: info for info in store.feeds()}
        self._feeds: RenderedOnce[RenderedFeed] = RenderedOnce()
        self._term_lists: RenderedOnce[tuple[FeedInfo, ...]] = RenderedOnce()
        # Per thread, the items of the feed it rendered last: its other formats
        # usually come next (a feed's formats are rendered together), and read
        # them from here instead of the store. Each value is replaced whole.
        self._last_items = threading.local()

    def items_for(self, key: FeedKey, limit: int) -> tuple[Item, ...]:
        """``ReadStore.items_for``, read once for the formats of one feed in a row."""
        last: tuple[FeedKey, int, tuple[Item, ...]] | None = getattr(
            self._last_items, "value", None
        )
        if last is not None and last[0] == key and last[1] == limit:
            return last[2]
        items = self._store.items_for(key, limit)
        self._last_items.value = (key, limit, items)
        return items

    def kept(self, key: FeedKey, fmt: Format) -> RenderedFeed | None:
        return self._feeds.kept((key, fmt.name))

    def feed(
        self, key: FeedKey, fmt: Format, render: Callable[[], RenderedFeed | None]
    ) -> RenderedFeed | None:
        return self._feeds.get((key, fmt.name), render)

    def term_list(self, facet: str) -> tuple[FeedInfo, ...]:
        found = self._term_lists.get(facet, lambda: self._store.term_feeds(facet))
        return found if found is not None else ()


class _View(NamedTuple):
    """What requests are served from; replaced whole, never changed."""

    stamp: int  # the signal's value, read before the generation was
    generation: _Generation
    read_at: float  # when that generation was read (monotonic seconds)


class FeedCache:
    """Rendered feeds by (key, format) for the store's current generation.

    Invariant: every feed it returns was rendered for the newest generation
    this process read from the store, and that read follows every change the
    process was told of. Without a ``signal``, each call reads the generation
    (SQLite ~25 µs, PostgreSQL ~110 µs; bench/README.md). With one, a call
    reads it when ``signal.read()`` moved (``changed()`` moves it for every
    process: a refresh is served everywhere once it answered) or when the
    last read is ``recheck_seconds`` old (a scan by another process, such as
    the watcher). Reads are numbered, and only the latest decides what is
    served, so a slow read never brings an older generation back.

    With ``recheck_seconds`` > 0, a thread of this process (started on first
    use, again after a fork) also reads the generation that often and, when
    it moved, renders the new grid in every format before serving it, so
    that requests find it rendered. A feed is rendered at most once per
    generation and process, however many threads miss it together (the
    thread included). Thread-safe; nothing outside touches its fields.

    Tag and author feeds are not rendered ahead: each is rendered on its first
    request and kept in a ``RenderedLru`` of ``feeds.term_cache_bytes``. A feed
    that once had items and has none now (any facet; ``Store.known_feed``)
    renders as a valid feed without items; a feed that never existed is None.
    """

    def __init__(
        self,
        settings: Settings,
        store: ReadStore,
        *,
        signal: ChangeSignal | None = None,
        recheck_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._signal = signal
        self._trust = recheck_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._view: _View | None = None  # one attribute: read whole, replaced whole
        self._opened: _Generation | None = None  # the newest one built, served or not
        self._opening: InFlight[_Generation] = InFlight()
        self._reads = 0  # generation reads started
        self._decided = 0  # the read that chose ``_view``
        self._failed = -1  # a generation ``poll`` could not render
        self._terms: RenderedLru[RenderedFeed] = RenderedLru(settings.feeds.term_cache_bytes)
        self._poller = _Poller(self.poll, recheck_seconds) if recheck_seconds > 0 else None

    # -- which generation is served --

    def _current(self) -> _Generation:
        if self._poller is not None:
            self._poller.ensure_running()
        if self._signal is None:
            return self._follow(0)
        stamp = self._signal.read()
        view = self._view
        if (
            view is not None
            and view.stamp == stamp
            and self._monotonic() - view.read_at < self._trust
        ):
            return view.generation  # the hot path: a stat and two comparisons
        return self._follow(stamp)

    def _read(self) -> tuple[int, float, int]:
        """(the number of this read, when it started, the store's generation)."""
        with self._lock:
            self._reads += 1
            ticket = self._reads
        started = self._monotonic()
        return ticket, started, self._store.generation()

    def _follow(self, stamp: int) -> _Generation:
        try:
            ticket, started, number = self._read()
        except StoreError:
            view = self._view
            if view is None:
                raise
            # The store is down (a restart, a dropped connection): subscribers
            # keep getting the last feeds rendered rather than errors.
            return view.generation
        return self._serve(ticket, _View(stamp, self._generation(number), started))

    def _serve(self, ticket: int, view: _View) -> _Generation:
        """Serve ``view`` unless a later read decided already (it is as fresh)."""
        with self._lock:
            if ticket > self._decided:
                self._decided = ticket
                self._view = view
            assert self._view is not None
            return self._view.generation

    def _served(self) -> _Generation | None:
        view = self._view
        return None if view is None else view.generation

    def _generation(self, number: int) -> _Generation:
        """The one ``_Generation`` of this number, built (grid read) by one thread."""

        def known() -> _Generation | None:
            for found in (self._served(), self._opened):
                if found is not None and found.number == number:
                    return found
            return None

        def build() -> _Generation:
            built = _Generation(number, self._store)
            with self._lock:
                self._opened = built
            return built

        found = known()
        if found is None:
            found = self._opening.run(number, known, build)
        assert found is not None
        return found

    def poll(self) -> None:
        """Once: when the store's generation moved, render its grid, then serve it.

        A generation whose rendering raised is not tried again by polls (the
        error is logged once by the thread); requests still render what they ask.
        """
        try:
            ticket, started, number = self._read()
            served = self._served()
            if number == self._failed or (served is not None and served.number == number):
                return
            generation = self._generation(number)
            self._failed = number  # until every feed rendered
            for _ in _each_in_threads(self._grid_formats(generation), generation.grid.values()):
                pass
            for facet in TERM_FACETS:
                generation.term_list(facet)
            self._failed = -1
        except StoreError as exc:
            self._failed = -1  # the store, not the content: the next poll tries again
            log.debug("feeds: the store is not available to poll: %s", exc)
            return
        view = self._view
        # The signal's value stays: only a request that reads it may move it.
        self._serve(ticket, _View(0 if view is None else view.stamp, generation, started))

    def changed(self) -> None:
        """A scan this process ran committed: every process follows it on its next call."""
        if self._signal is not None:
            self._signal.mark()

    def close(self) -> None:
        """Stop this process's polling thread (tests; a server process just exits)."""
        if self._poller is not None:
            self._poller.stop()

    # -- what is served --

    def grid(self) -> tuple[FeedInfo, ...]:
        """Every feed that exists now, sorted by key."""
        return tuple(self._current().grid.values())

    def term_grid(self, facet: str) -> tuple[FeedInfo, ...]:
        """Every tag (or author) feed that has items now, sorted by slug, ``all`` first.

        Read once per generation, on first use: listing pages and the OPML only.
        """
        return self._current().term_list(facet)

    def get(self, key: FeedKey, fmt_name: str) -> RenderedFeed | None:
        """The rendered feed, or None when that feed never existed or no such format."""
        fmt = FORMATS_BY_NAME.get(fmt_name)
        if fmt is None:
            return None
        generation = self._current()
        if key.facet != FACET_CATEGORY:
            return self._terms.get(
                generation.number, (key, fmt.name), lambda: self._term_feed(generation, key, fmt)
            )
        return self._grid_feed(generation, key, fmt)

    def _grid_feed(self, generation: _Generation, key: FeedKey, fmt: Format) -> RenderedFeed | None:
        found = generation.kept(key, fmt)
        if found is not None:
            return found  # the hot path: one dictionary lookup

        def render() -> RenderedFeed | None:
            info = generation.grid.get(key)
            if info is None:
                info = self._store.known_feed(key)
                if info is None:
                    return None
                items: tuple[Item, ...] = ()  # it once existed: a valid feed, no items
            else:
                items = generation.items_for(key, self._settings.feeds.max_items)
            return render_feed(self._settings, info, fmt, items)

        return generation.feed(key, fmt, render)

    def _term_feed(self, generation: _Generation, key: FeedKey, fmt: Format) -> RenderedFeed | None:
        known = self._store.known_feed(key)  # also its display name
        if known is None:
            return None
        items = generation.items_for(key, self._settings.feeds.max_items)
        name = next(iter(term_names(items, key)), known.category_name)
        info = FeedInfo(key=key, item_count=len(items), category_name=name)
        return render_feed(self._settings, info, fmt, items)

    def term_cache_stats(self) -> tuple[int, int]:
        """(tag and author feeds kept rendered, their bytes)."""
        return self._terms.stats()

    def all_feeds(self) -> Iterator[tuple[FeedInfo, Format, RenderedFeed]]:
        """Every feed with items, grid first, then tags and authors, in every format."""
        infos = (*self.grid(), *(i for facet in TERM_FACETS for i in self.term_grid(facet)))

        def formats(info: FeedInfo) -> list[tuple[Format, RenderedFeed | None]]:
            return [(fmt, self.get(info.key, fmt.name)) for fmt in FORMATS]

        for info, rendered in zip(infos, _each_in_threads(formats, infos), strict=True):
            for fmt, feed in rendered:
                if feed is not None:
                    yield info, fmt, feed

    def _grid_formats(self, generation: _Generation) -> Callable[[FeedInfo], None]:
        def render(info: FeedInfo) -> None:
            for fmt in FORMATS:
                self._grid_feed(generation, info.key, fmt)

        return render


class _Poller:
    """The one thread per process that calls ``poll`` every ``seconds``.

    Started on first use and again in a forked child (threads do not survive
    a fork); a failing poll is logged and the next one runs.
    """

    def __init__(self, poll: Callable[[], None], seconds: float) -> None:
        self._poll = poll
        self._seconds = seconds
        self._lock = threading.Lock()
        self._pid = 0
        self._stop = threading.Event()

    def ensure_running(self) -> None:
        if self._pid == os.getpid():
            return
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(self._stop,), name="feedsvc-feeds", daemon=True
            )
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._seconds):
            try:
                self._poll()
            except Exception:  # the next poll tries again; the cause goes to the log
                log.exception("feeds: rendering a new generation failed")
