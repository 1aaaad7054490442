"""One scan at a time, across threads, processes and hosts; owns no step of a scan.

``Scanner`` is what the watcher, the refresh endpoint and the CLI call: it
shares a running scan's report with callers that arrive meanwhile, takes the
store's scan lock, records each outcome (docs/operations.md, "Health") and
runs ``pipeline.run_scan``. It logs as ``feedsvc.pipeline``, the name
operators filter the scan's lines by.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import datetime

from feedsvc import health, pipeline
from feedsvc.discover import Listings
from feedsvc.errors import ContentRootError, StoreError
from feedsvc.pipeline import Ask, Clock, Progress
from feedsvc.plan import Census, Scope
from feedsvc.settings import Settings
from feedsvc.store import ScanFailure, ScanState, Store
from feedsvc.types import ScanReport

log = logging.getLogger("feedsvc.pipeline")


class Scanner:
    """Runs scans so that there is never more than one at a time, anywhere.

    Callers in the same process that arrive while a scan runs wait for it and
    share its report. Other processes and hosts are excluded by the store's
    scan lock: if another holds it, this one waits for that scan to finish
    and answers with the report that scan recorded.

    A scan that fails as a whole (the content folder is gone, the store
    refused) is remembered as a ``ScanFailure``: in the store when it still
    takes writes, so every process's ``/api/status`` says ``degraded`` and
    why, and in ``last_failure`` for this process whatever the store does.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Clock,
        *,
        on_report: Callable[[ScanReport], None] | None = None,
    ) -> None:
        """``on_report``: called with the report of each scan this process ran (metrics)."""
        self._settings = settings
        self._store = store
        self._clock = clock
        self._on_report = on_report
        self._mutex = threading.Lock()
        self._done = threading.Condition(self._mutex)
        self._running = False
        self._runs = 0
        self._last: ScanReport | None = None
        self._failure: BaseException | None = None
        self._listings = Listings()  # unchanged folders are not listed again
        # What this process's last scan found that the store does not keep; a
        # scoped scan needs it (plan.Census). Set by each scan this process runs.
        self._census: Census | None = None
        self.last_failure: ScanFailure | None = None
        self.last_success_at: datetime | None = None  # when this process's last good scan began

    def run(
        self, progress: Progress | None = None, *, paths: Collection[str] | None = None
    ) -> ScanReport:
        """Scan now, or join the scan already running; return its report.

        A scan that fails raises in every caller that shared it. ``paths``:
        the relative paths file events named, for a scoped scan
        (docs/operations.md, "Scoped scans"); None walks the whole root.
        """
        with self._mutex:
            if self._running:
                seen = self._runs
                while self._runs == seen:
                    self._done.wait()
                if self._failure is not None:
                    raise self._failure
                assert self._last is not None
                return self._last
            self._running = True
        report: ScanReport | None = None
        failure: BaseException | None = None
        try:
            report = self._run_locked(Ask(progress, paths=paths))
            return report
        except BaseException as exc:
            failure = exc
            raise
        finally:
            with self._mutex:
                self._running = False
                self._runs += 1
                self._last, self._failure = report, failure
                self._done.notify_all()

    def run_after(
        self, progress: Progress | None = None, *, paths: Collection[str] | None = None
    ) -> ScanReport:
        """A scan that starts after this call (file events: the change must be seen).

        ``run`` joins a scan already running, which may have listed the folder
        before the change that brought this call; this waits that one out first.
        """
        with self._mutex:
            if self._running:
                seen = self._runs
                while self._runs == seen:
                    self._done.wait()
        return self.run(progress, paths=paths)

    def _run_locked(self, ask: Ask) -> ScanReport:
        try:
            report = self._run_exclusive(ask)
        except (ContentRootError, StoreError) as exc:
            self._note_failure(exc)
            raise
        self.last_failure = None
        self.last_success_at = report.started_at
        return report

    def _note_failure(self, exc: ContentRootError | StoreError) -> None:
        # StoreError texts never carry a URL or password (store/engine.py);
        # ContentRootError.reason leaves out the folder's absolute path.
        reason = exc.reason if isinstance(exc, ContentRootError) else str(exc)
        failure = ScanFailure(reason=reason, failed_at=self._clock())
        self.last_failure = failure
        log.error("scan failed, the feeds keep their last good state: %s", exc)
        try:
            self._store.record_failure(failure)
        except StoreError as store_exc:  # the store is what failed: this process knows
            log.warning("cannot record the failed scan in the store: %s", store_exc)

    def _run_exclusive(self, ask: Ask) -> ScanReport:
        with self._store.scan_lock(wait=False) as held:
            if held:
                return self._scan_and_record(ask)
        # Another process or host is scanning: wait for it and share its result.
        with self._store.scan_lock(wait=True):
            state = self._store.last_scan()
            if state is not None:
                return state.report
            return self._scan_and_record(ask)

    def _scan_and_record(self, ask: Ask) -> ScanReport:
        # One "scan started"/"scan finished" pair per scan really run (callers
        # that share a scan log nothing here): the log shows scans never overlap.
        log.info("scan started" + ("" if ask.paths is None else " after file events"))
        reopened = self._store.reopen_if_replaced(create=True)  # never write a deleted file
        if reopened is not None:
            health.note_store_event(self._store, self._settings.store.url, reopened, self._clock())
            # A new store file knows nothing: it is filled from the whole folder, never
            # from the paths one event named (docs/operations.md, "The store heals").
            ask = replace(ask, paths=None)
        ask = replace(ask, listings=self._listings, census=self._census)
        scanned = pipeline.run_scan(self._settings, self._store, self._clock(), ask)
        report = scanned.report
        self._census = scanned.census
        self._store.record_scan(ScanState(report, finished_at=self._clock()))
        log.info("scan finished%s: %s", _scope_note(ask, scanned.scope), report.summary())
        if self._on_report is not None:
            self._on_report(report)
        return report


def _scope_note(ask: Ask, scope: Scope | None) -> str:
    """What the scan looked at, for the log: nothing for a full scan that was asked for."""
    if ask.paths is None:
        return ""
    if scope is None:
        return f" (a full scan after file events naming {_paths(len(ask.paths))})"
    return f" (scan of {_paths(len(scope.paths))} from file events)"


def _paths(count: int) -> str:
    return f"{count} path" if count == 1 else f"{count} paths"
