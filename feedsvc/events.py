"""File-system events under the content root, debounced into scans (watchdog, inotify).

Owns *noticing* that files changed, *which* paths the events named, and
deciding *when* to scan: after the folder has been quiet for
``watch.debounce_ms`` (a burst of writes is one scan), and at the latest
``MAX_DELAY_FACTOR`` quiet windows after the first event of a burst (a file
written for minutes still gets scanned). What a scan
does is ``scanner.Scanner``'s business, and so is keeping scans one at a time.
Each quiet window hands over the paths its events named (``Touched``), or
says they cannot be named (the kernel's queue overflowed and events were
lost, the root itself was moved or deleted): then the scan walks everything.

Events are a shortcut, never the only way in: queues overflow, network
filesystems send none, inotify watches run out. The scheduled rescan stays
(``watcher.py``), and ``FileEvents.start`` says why events are unavailable
instead of failing the watcher. A file seen half-written is handled as
always (the scan reports it and keeps the last good item); its closing write
sends another event, which brings another scan.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

log = logging.getLogger(__name__)

# Writes only: opening, reading (the scan itself) and attribute changes (atime)
# must never bring a scan, or every scan would bring the next.
WRITE_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]
# A burst of events that never goes quiet is scanned after this many windows.
MAX_DELAY_FACTOR = 8

# Called when the folder went quiet; returns seconds after which to scan once
# more whatever happens (a file that must settle first), or None.
OnQuiet = Callable[[], float | None]

# watchdog's inotify observer says so in its log, and nowhere else, when the
# kernel's event queue overflowed (it then rebuilds its watches itself).
_OVERFLOW_LOGGER = "watchdog.observers.inotify_c"
_OVERFLOW_TEXT = "overflowed"


@dataclass(frozen=True, slots=True)
class Touched:
    """What the events of one quiet window named: relative paths as the file system
    spells them (``os.fsdecode``), or None when events were lost or the root itself
    changed, so no list of paths can be trusted."""

    paths: frozenset[str] | None


# Called with what a quiet window's events named; returns as ``OnQuiet`` does.
OnChange = Callable[[Touched], float | None]


def _hidden(root: Path, path: str) -> bool:
    """True for a path the scan never reads because a segment is hidden (``.git``, ``.x.swp``)."""
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    return any(part.startswith(".") for part in parts)


class Debouncer:
    """Turns a stream of ``poke()`` calls into calls of ``on_quiet``, one at a time.

    ``on_quiet`` runs on this object's own thread, never two at once; a poke
    that arrives while it runs brings one more call after the next quiet
    window. ``monotonic`` and the waits are injectable for tests of the timing rule.
    """

    def __init__(
        self,
        on_quiet: OnQuiet,
        quiet_seconds: float,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_quiet = on_quiet
        self._quiet = quiet_seconds
        self._max_delay = quiet_seconds * MAX_DELAY_FACTOR
        self._monotonic = monotonic
        self._cond = threading.Condition()
        self._first: float | None = None  # first poke of the burst not yet scanned
        self._last = 0.0
        self._due: float | None = None  # a follow-up asked for by on_quiet
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="feedsvc-events", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def poke(self) -> None:
        with self._cond:
            now = self._monotonic()
            if self._first is None:
                self._first = now
            self._last = now
            self._cond.notify()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _next_call(self, now: float) -> float | None:
        """When ``on_quiet`` should run next (monotonic time), or None for "on a poke"."""
        when: float | None = None
        if self._first is not None:
            when = min(self._last + self._quiet, self._first + self._max_delay)
        if self._due is not None:
            when = self._due if when is None else min(when, self._due)
        return when

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = self._monotonic()
                    when = self._next_call(now)
                    if when is not None and when <= now:
                        break
                    self._cond.wait(None if when is None else when - now)
                if self._stopped:
                    return
                # Pokes from now on belong to the next burst.
                self._first = None
                self._due = None
            try:
                follow_up = self._on_quiet()
            except Exception:  # a bug in one scan must not end file events for good
                log.exception("scan after file events failed")
                follow_up = None
            if follow_up is not None:
                with self._cond:
                    due = self._monotonic() + follow_up
                    self._due = due if self._due is None else min(self._due, due)


class _Named:
    """The paths named since the last ``take``, gathered from the observer's thread."""

    def __init__(self, root: Path) -> None:
        self._root = os.fsdecode(root)
        self._lock = threading.Lock()
        self._paths: set[str] = set()
        self._lost = False

    def add(self, path: str) -> None:
        """One path an event named (absolute, as watchdog gives it)."""
        rel = os.path.relpath(path, self._root)
        with self._lock:
            if rel in {".", ".."} or rel.startswith("../"):
                self._lost = True  # the root itself (or above it): walk everything
            else:
                self._paths.add(rel)

    def lose(self) -> None:
        with self._lock:
            self._lost = True

    def take(self) -> Touched:
        with self._lock:
            touched = Touched(None if self._lost else frozenset(self._paths))
            self._paths = set()
            self._lost = False
        return touched


class _Overflow(logging.Handler):
    """Hears watchdog say that the kernel dropped events (``_OVERFLOW_LOGGER``)."""

    def __init__(self, named: _Named) -> None:
        super().__init__(logging.WARNING)
        self._named = named

    def emit(self, record: logging.LogRecord) -> None:
        if _OVERFLOW_TEXT in record.getMessage():
            self._named.lose()


class _Handler(FileSystemEventHandler):
    def __init__(self, root: Path, named: _Named, poke: Callable[[], None]) -> None:
        self._root = root
        self._named = named
        self._poke = poke

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [os.fsdecode(p) for p in (event.src_path, getattr(event, "dest_path", "")) if p]
        seen = [p for p in paths if not _hidden(self._root, p)]
        if not seen:
            return
        for path in seen:  # named before the poke: the scan it brings sees them
            self._named.add(path)
        self._poke()


class FileEvents:
    """watchdog's observer on the content root feeding a ``Debouncer``; each quiet
    window calls ``on_change`` with what its events named."""

    def __init__(self, root: Path, on_change: OnChange, quiet_seconds: float) -> None:
        self._root = root
        self._named = _Named(root)
        self._on_change = on_change
        self._debouncer = Debouncer(self._quiet, quiet_seconds)
        self._overflow = _Overflow(self._named)
        self._observer: BaseObserver | None = None

    def _quiet(self) -> float | None:
        return self._on_change(self._named.take())

    def start(self) -> str | None:
        """Start watching; None when events flow, else why they cannot (nothing is left running)."""
        observer: BaseObserver = Observer()
        try:
            observer.schedule(
                _Handler(self._root, self._named, self._debouncer.poke),
                str(self._root),
                recursive=True,
                event_filter=WRITE_EVENTS,
            )
            observer.start()
        except OSError as exc:
            # ENOSPC: fs.inotify.max_user_watches reached; EMFILE: max_user_instances;
            # ENOENT: the folder is not there (yet).
            reason = exc.strerror or str(exc)
            if exc.errno == 28:
                reason = "inotify watch limit reached (fs.inotify.max_user_watches)"
            elif exc.errno == 24:
                reason = "inotify instance limit reached (fs.inotify.max_user_instances)"
            _stop_observer(observer)
            return reason
        self._observer = observer
        logging.getLogger(_OVERFLOW_LOGGER).addHandler(self._overflow)
        self._debouncer.start()
        return None

    def stop(self) -> None:
        if self._observer is not None:
            _stop_observer(self._observer)
            self._observer = None
            logging.getLogger(_OVERFLOW_LOGGER).removeHandler(self._overflow)
        self._debouncer.stop()


def _stop_observer(observer: BaseObserver) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(timeout=10)
    except RuntimeError:  # never started
        pass
