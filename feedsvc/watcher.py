"""The watcher: APScheduler wiring only.

Owns *when* scans run (once at start-up, then every
``watch.interval_seconds``); *how* is ``pipeline.Scanner``, which also makes
sure no two scans overlap anywhere. A failed scan is logged and the feeds
keep serving what the store holds.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from feedsvc.errors import ContentRootError, FeedsvcError, StoreError
from feedsvc.pipeline import Scanner
from feedsvc.settings import Settings
from feedsvc.store import open_store

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def scan_job(scanner: Scanner) -> None:
    """One scheduled scan; problems are logged, never raised into the scheduler."""
    try:
        report = scanner.run()
    except (ContentRootError, StoreError):
        return  # logged and recorded (for /api/status) by the Scanner
    except FeedsvcError as exc:
        log.error("scan failed, feeds keep their last good state: %s", exc)
        return
    log.info("scan: %s", report.summary())


def add_scan_job(scheduler: BaseScheduler, scanner: Scanner, interval_seconds: int) -> None:
    scheduler.add_job(
        scan_job,
        "interval",
        args=(scanner,),
        seconds=interval_seconds,
        next_run_time=utc_now(),  # SPEC §3: once at start-up, then on the interval
        id="scan",
        max_instances=1,  # never two scans from this scheduler; the scan lock covers the rest
        coalesce=True,  # after a stall, one catch-up scan, not a burst
        misfire_grace_time=interval_seconds,
    )


def run_watcher(settings: Settings) -> None:
    """Run the watcher in the foreground until interrupted (``feedsvc watch``)."""
    store = open_store(settings.store.url)
    scheduler = BlockingScheduler(timezone=UTC)
    add_scan_job(scheduler, Scanner(settings, store, utc_now), settings.watch.interval_seconds)
    log.info("watching %s every %d s", settings.content.path, settings.watch.interval_seconds)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        store.close()
