"""The watcher: APScheduler and file-event wiring only.

Owns *when* scans run (once at start-up, then every
``watch.interval_seconds``, and after file events when ``watch.file_events``
is on: ``events.py``, scoped to the paths they named); *how* is
``scanner.Scanner``, which also makes sure no two scans overlap anywhere. It
also starts the deployment's one schedule timer (``schedule.Releaser``). A
failed scan is logged and the feeds keep serving what the store holds.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from feedsvc.budget import die_with_parent
from feedsvc.dates import utc_now
from feedsvc.discover import display_path
from feedsvc.errors import ContentRootError, FeedsvcError, StoreError
from feedsvc.events import FileEvents, Touched
from feedsvc.health import HealthBoard, Heartbeat, beat_seconds
from feedsvc.metrics import Metrics
from feedsvc.progress import ScanProgress
from feedsvc.scanner import Scanner
from feedsvc.schedule import Releaser
from feedsvc.settings import Settings
from feedsvc.store import FileEventsState, Store, open_store
from feedsvc.supervise import PARENT_ENV
from feedsvc.websub.dispatch import Dispatcher

log = logging.getLogger(__name__)


def _nothing() -> None:
    return None


def scan_job(scanner: Scanner, after: Callable[[], None] = _nothing) -> None:
    """One scheduled scan; problems are logged, never raised into the scheduler.

    ``after`` runs once the scan is over (the WebSub dispatcher looks at once).
    """
    try:
        report = scanner.run(progress=ScanProgress(sys.stderr, bar=False))
    except (ContentRootError, StoreError):
        return  # logged and recorded (for /api/status) by the Scanner
    except FeedsvcError as exc:
        log.error("scan failed, feeds keep their last good state: %s", exc)
        return
    log.info("scan: %s", report.summary())
    after()


class EventScans:
    """The scans file events bring, each one that starts after them (``Scanner.run_after``).

    Each is scoped to the paths the events named plus the files the last one
    left pending (docs/operations.md, "Scoped scans"); the Scanner walks the
    whole root instead when the events could not name them or a scoped scan
    cannot be trusted. Runs on the debouncer's one thread.
    """

    def __init__(
        self, scanner: Scanner, settle_seconds: float, after: Callable[[], None] = _nothing
    ) -> None:
        self._scanner = scanner
        self._settle_seconds = settle_seconds
        self._after = after
        self._pending: frozenset[str] = frozenset()  # left by the last scan, in file events' terms

    def __call__(self, touched: Touched) -> float | None:
        """Scan; return when to scan once more: a file still settling
        (``content.settle_seconds``) was left for later, and no further event may come for it."""
        paths: frozenset[str] | None = None
        if touched.paths is not None:
            paths = frozenset(display_path(os.fsencode(p)) for p in touched.paths) | self._pending
            if not paths:
                return None
        try:
            report = self._scanner.run_after(paths=paths)
        except (ContentRootError, StoreError):
            return None  # logged and recorded by the Scanner
        except FeedsvcError as exc:
            log.error("scan failed, feeds keep their last good state: %s", exc)
            return None
        log.info("scan after file events: %s", report.summary())
        self._after()
        self._pending = frozenset(report.pending)
        return self._settle_seconds if report.pending else None


def start_file_events(
    settings: Settings, scanner: Scanner, store: Store, after: Callable[[], None] = _nothing
) -> FileEvents | None:
    """Watch the content root when ``watch.file_events`` is on; say in the log and the
    store (for /api/status) whether events flow. None when they do not."""
    events: FileEvents | None = None
    if not settings.watch.file_events:
        reason: str | None = "switched off (watch.file_events = false)"
    else:
        events = FileEvents(
            settings.content_root,
            EventScans(scanner, settings.content.settle_seconds, after),
            settings.watch.debounce_ms / 1000,
        )
        reason = events.start()
        if reason is not None:
            events = None
    if reason is None:
        log.info(
            "file events on: scans follow writes after %d ms of quiet", settings.watch.debounce_ms
        )
    else:
        log.warning(
            "file events unavailable (%s): changes are seen by the rescan every %d s",
            reason,
            settings.watch.interval_seconds,
        )
    try:
        store.record_file_events(FileEventsState(reason is None, reason, utc_now()))
    except StoreError as exc:
        log.warning("cannot record the file events state in the store: %s", exc)
    return events


def add_scan_job(
    scheduler: BaseScheduler,
    scanner: Scanner,
    interval_seconds: int,
    after: Callable[[], None] = _nothing,
) -> None:
    scheduler.add_job(
        scan_job,
        "interval",
        args=(scanner, after),
        seconds=interval_seconds,
        next_run_time=utc_now(),  # docs/cli.md, watch: once at start-up, then on the interval
        id="scan",
        max_instances=1,  # never two scans from this scheduler; the scan lock covers the rest
        coalesce=True,  # after a stall, one catch-up scan, not a burst
        misfire_grace_time=interval_seconds,
    )


def start_hub(settings: Settings, store: Store) -> Dispatcher | None:
    """The WebSub dispatcher, when there is a hub to serve or external hubs to ping.

    It runs here, in the one watcher process: web workers only queue requests.
    """
    if not (settings.websub.hub or settings.websub.hubs):
        return None
    try:
        dispatcher = Dispatcher(settings, store, utc_now)
    except StoreError as exc:
        log.error("websub: the hub cannot start, no notifications will be sent: %s", exc)
        return None
    dispatcher.start()
    return dispatcher


def add_heartbeat_job(
    scheduler: BaseScheduler, settings: Settings, scanner: Scanner, store: Store
) -> Heartbeat:
    """Report this watcher's health now and every few seconds (``feedsvc.health``)."""
    board = HealthBoard(store, settings.store.url)
    heartbeat = Heartbeat(board, scanner, settings.watch.interval_seconds)
    scheduler.add_job(
        heartbeat.beat,
        "interval",
        seconds=beat_seconds(settings.watch.interval_seconds),
        next_run_time=utc_now(),
        id="heartbeat",
        max_instances=1,
        coalesce=True,
    )
    return heartbeat


def _die_with_supervisor() -> None:
    """Under ``feedsvc serve``: die with it, however it dies (``supervise.PARENT_ENV``)."""
    parent = os.environ.get(PARENT_ENV)
    if parent and parent.isdigit():
        die_with_parent(int(parent))


def run_watcher(settings: Settings) -> None:
    """Run the watcher in the foreground until interrupted (``feedsvc watch``)."""
    _die_with_supervisor()
    store = open_store(settings.store.url)
    scheduler = BlockingScheduler(timezone=UTC)
    scanner = Scanner(settings, store, utc_now, on_report=Metrics().scan_report)
    dispatcher = start_hub(settings, store)
    after = dispatcher.wake if dispatcher is not None else _nothing
    add_scan_job(scheduler, scanner, settings.watch.interval_seconds, after)
    heartbeat = add_heartbeat_job(scheduler, settings, scanner, store)
    log.info("watching %s every %d s", settings.content.path, settings.watch.interval_seconds)
    events = start_file_events(settings, scanner, store, after)
    releaser = Releaser(store, utc_now, after=after)  # the deployment's one schedule timer
    releaser.start()
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        releaser.stop()
        if events is not None:
            events.stop()
        if dispatcher is not None:
            dispatcher.stop()
        if scheduler.running:
            scheduler.shutdown(wait=False)
        heartbeat.stop()
        store.close()
