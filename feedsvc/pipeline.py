"""The rescan as an executor: discover -> plan -> read -> record -> stage -> commit -> report.

Owns running a scan and ``Scanner`` (one scan at a time, across threads,
processes and hosts); decides nothing about a file itself. What to read is
``plan.py``, how a file is read ``fileread.py``, what each file means for
the scan ``ledger.py``; how items are persisted is the store's. It never
reads the clock: the caller passes ``now`` (``Scanner``: a ``clock``).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from feedsvc import health
from feedsvc.discover import Discovery, Listings, discover
from feedsvc.errors import ContentRootError, StoreError
from feedsvc.fileread import FileReader, outcomes
from feedsvc.ledger import Candidate, Ledger
from feedsvc.normalise import site_digest
from feedsvc.outcome import Outcome, Parsed
from feedsvc.plan import (
    NO_HOLDINGS,
    Conditions,
    ScanPlan,
    carried_warnings,
    departures,
    holdings,
    plan,
    read_order,
    rows_wanted,
    start_claims,
    stored_claims,
)
from feedsvc.settings import Settings
from feedsvc.store import ScanChanges, ScanFailure, ScanState, ScanWriter, Store
from feedsvc.types import FileState, ScanReport, SourceFile, StoredFile

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]

# Items handed to the store per chunk: bounds a scan's memory (a cold scan of
# 50,000 files never holds more than this many items) without costing round trips.
STAGE_ITEMS = 500
# A scan that reads at least this many files spreads parsing over a process
# pool (spawned processes start in about a second, so small scans stay serial).
POOL_MIN_FILES = 2000


def scan(  # noqa: PLR0913 - the public entry point; all but two are keyword-only
    settings: Settings,
    store: Store,
    *,
    now: datetime,
    progress: Progress | None = None,
    workers: int | None = None,
    listings: Listings | None = None,
) -> ScanReport:
    """Rescan the content root once and apply what changed; return the report.

    Raises ``ContentRootError`` (changing nothing) when the root is missing,
    unreadable or empty. Every per-file problem lands in ``report.errors``
    and the file's item keeps its last good version.

    ``workers``: processes that parse files; None picks one per core (at most
    two) when at least ``POOL_MIN_FILES`` files must be read, else one (no pool).
    Items reach the store in chunks inside ONE transaction (``Store.scan_writer``).
    ``listings``: folder listings kept from earlier scans of this process (a cache).
    """
    started = time.perf_counter()
    with _gc_paused():
        found: Discovery = discover(
            settings.content_root,
            settings.content.ignore,
            settings.content.max_file_bytes,
            listings,
            settings.content.rules,
        )
        facts = ScanReport(
            started_at=now,
            resources=len(found.resources),
            documents=len(found.files),
            ignored=found.ignored,
        )
        known = store.file_states()
        digest = site_digest(settings.site)
        renormalise = store.settings_digest() != digest
        todo = plan(found, known, Conditions(now, settings.content.settle_seconds, renormalise))
        # Free the fingerprints before the collector is back: its first pass
        # would otherwise walk every one of them (about 50 ms at 50,000 files).
        del found
        run = _prepare(FileReader(settings, now, renormalise), store, todo, known)
    with store.scan_writer(now) as writer:
        run.read_all(writer, progress, _workers(workers, len(todo.read)))
        generation = writer.commit(run.finish(writer, digest if renormalise else None))
    items = store.item_counts(now)
    report = run.ledger.report(
        replace(
            facts,
            duration_ms=round((time.perf_counter() - started) * 1000),
            generation=generation,
            items=items,
        )
    )
    for problem in report.errors:
        log.debug("problem in %s: %s", problem.path, problem.error)
    return report


@dataclass(frozen=True, slots=True)
class _Run:
    """One scan being applied: its plan, the stored rows it needed, and its ledger."""

    reader: FileReader
    store: Store
    todo: ScanPlan
    known: Mapping[str, FileState]
    rows: Mapping[str, StoredFile]  # full rows of the files read, and of some gone ones
    waiting: Mapping[str, tuple[str, ...]]  # id -> refused files waiting for it
    ledger: Ledger

    def read_all(self, writer: ScanWriter, progress: Progress | None, workers: int) -> None:
        """Read the planned files, fold each outcome into the ledger, stage in chunks."""
        order = read_order(self.todo, self.rows, self.reader.now)
        work = [(source, self.rows.get(source.path)) for source in order]
        ledger = self.ledger
        with closing(outcomes(self.reader, work, workers)) as results:
            for done, ((source, prev), outcome) in enumerate(zip(work, results, strict=True), 1):
                ledger.record(source, prev, outcome, self.redo)
                if len(ledger.pending) >= STAGE_ITEMS:
                    _stage(self.store, writer, ledger)
                if progress is not None:
                    progress(done, len(work))

    def finish(self, writer: ScanWriter, settings_digest: str | None) -> ScanChanges:
        """Decide the open ids and the files not found; stage the rest; what to commit."""
        ledger = self.ledger
        ledger.settle_open_ids(self.waiting, self.reread)
        ledger.judge_claiming(self.todo.claiming)
        _stage(self.store, writer, ledger)
        gone = departures(self.todo, self.rows)
        ledger.depart(gone, self.known)
        return ScanChanges(
            files=ledger.latest_files(),
            removed_paths=gone.removed,
            removed_items=tuple(ledger.removed_items),
            settings_digest=settings_digest,
        )

    def redo(
        self, source: SourceFile, prev: StoredFile | None, moved_from: StoredFile | None
    ) -> Outcome:
        return self.reader.read(source, prev, moved_from=moved_from)

    def reread(self, path: str) -> Candidate | None:
        """A waiting file read again now that the id it waits for is open."""
        source = self.todo.claimants.get(path)
        prev = self.store.files([path]).get(path)
        if source is None or prev is None:
            return None
        outcome = self.reader.read(source, prev)
        return (source, prev, outcome) if isinstance(outcome, Parsed) else None


def _prepare(
    reader: FileReader, store: Store, todo: ScanPlan, known: Mapping[str, FileState]
) -> _Run:
    """What the store must say before reading: who holds each id, the rows of the
    files to read, the warnings that carry over."""
    held = NO_HOLDINGS
    if not todo.idle:
        claimed = stored_claims(known)
        ids = claimed.failing_ids()
        held = holdings(claimed, store.item_sources(ids) if ids else {})
    last = store.last_scan()
    carried = carried_warnings(last.report.warnings if last is not None else (), known, todo)
    wanted = rows_wanted(todo, known, held)
    rows = store.files(wanted) if wanted else {}
    ledger = Ledger(todo, start_claims(todo, held, rows), reader.now, carried)
    return _Run(reader, store, todo, known, rows, held.waiting, ledger)


def _stage(store: Store, writer: ScanWriter, ledger: Ledger) -> None:
    """Hand the pending file rows and the changed items to the writer (``Ledger.flush``)."""
    if not ledger.pending and not ledger.files:
        return
    files, items = ledger.flush(store.item_hashes(ledger.held_ids()))
    writer.stage(files, items)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while fingerprints are listed and compared.

    Discovery and the store's file states make a few objects per file and free
    almost none until the comparison is done, so at 50,000 files the collector
    kept walking them: reading the states took 0.35 s with it and 0.10 s
    without. Nothing here builds reference cycles, so nothing is left for the
    collector once it is back on.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _workers(requested: int | None, files: int) -> int:
    if requested is not None:
        return max(1, requested)
    if files < POOL_MIN_FILES:
        return 1
    return max(1, min(2, len(os.sched_getaffinity(0))))


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
        self.last_failure: ScanFailure | None = None
        self.last_success_at: datetime | None = None  # when this process's last good scan began

    def run(self, progress: Progress | None = None) -> ScanReport:
        """Scan now, or join the scan already running; return its report.

        A scan that fails raises in every caller that shared it.
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
            report = self._run_locked(progress)
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

    def run_after(self, progress: Progress | None = None) -> ScanReport:
        """A scan that starts after this call (file events: the change must be seen).

        ``run`` joins a scan already running, which may have listed the folder
        before the change that brought this call; this waits that one out first.
        """
        with self._mutex:
            if self._running:
                seen = self._runs
                while self._runs == seen:
                    self._done.wait()
        return self.run(progress)

    def _run_locked(self, progress: Progress | None) -> ScanReport:
        try:
            report = self._run_exclusive(progress)
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

    def _run_exclusive(self, progress: Progress | None) -> ScanReport:
        with self._store.scan_lock(wait=False) as held:
            if held:
                return self._scan_and_record(progress)
        # Another process or host is scanning: wait for it and share its result.
        with self._store.scan_lock(wait=True):
            state = self._store.last_scan()
            if state is not None:
                return state.report
            return self._scan_and_record(progress)

    def _scan_and_record(self, progress: Progress | None) -> ScanReport:
        # One "scan started"/"scan finished" pair per scan really run (callers
        # that share a scan log nothing here): the log shows scans never overlap.
        log.info("scan started")
        reopened = self._store.reopen_if_replaced(create=True)  # never write a deleted file
        if reopened is not None:
            health.note_store_event(self._store, self._settings.store.url, reopened, self._clock())
        report = scan(
            self._settings,
            self._store,
            now=self._clock(),
            progress=progress,
            listings=self._listings,
        )
        self._store.record_scan(ScanState(report, finished_at=self._clock()))
        log.info("scan finished: %s", report.summary())
        if self._on_report is not None:
            self._on_report(report)
        return report
