"""The rescan as an executor: discover -> plan -> read -> record -> stage -> commit -> report.

Owns running one scan, of the whole root or of the paths file events named
(``scanner.py`` makes sure only one runs at a time); decides nothing about a
file itself, nor the scope (``plan.scope_for``). What to read is ``plan.py``,
how a file is read ``fileread.py``, what each file means for the scan
``ledger.py``; how items are persisted is the store's. It never reads the
clock: the caller passes ``now`` (``Scanner``: a ``clock``).
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from feedsvc.discover import Discovery, Listings, discover, discover_paths
from feedsvc.fileread import FileReader, outcomes
from feedsvc.ledger import Candidate, Ledger
from feedsvc.normalise import site_digest
from feedsvc.outcome import Outcome, Parsed
from feedsvc.plan import (
    NO_HOLDINGS,
    Census,
    Conditions,
    ScanPlan,
    Scope,
    carried_warnings,
    departures,
    holdings,
    plan,
    plan_scoped,
    read_order,
    rows_wanted,
    scope_for,
    start_claims,
    stored_claims,
)
from feedsvc.settings import Settings
from feedsvc.store import ScanChanges, ScanState, ScanStore, ScanWriter
from feedsvc.types import FileState, ScanReport, SourceFile, StoredFile

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]

# Items handed to the store per chunk: bounds a scan's memory (a cold scan of
# 50,000 files never holds more than this many items) without costing round trips.
STAGE_ITEMS = 500
# A scan that reads at least this many files spreads parsing over a process
# pool (its fork server takes about half a second to import everything, so small
# scans stay serial).
POOL_MIN_FILES = 2000


def scan(  # noqa: PLR0913 - the public entry point; all but two are keyword-only
    settings: Settings,
    store: ScanStore,
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

    ``workers``: processes that parse files; None picks one per core when
    at least ``POOL_MIN_FILES`` files must be read, else one (no pool).
    Items reach the store in chunks inside ONE transaction (``Store.scan_writer``).
    ``listings``: folder listings kept from earlier scans of this process (a cache).
    """
    return run_scan(settings, store, now, Ask(progress, workers, listings)).report


@dataclass(frozen=True, slots=True)
class Ask:
    """How a scan is run: ``paths`` named by file events (None: the whole root) and
    ``census``, what this process's last scan found that the store does not keep."""

    progress: Progress | None = None
    workers: int | None = None
    listings: Listings | None = None
    paths: Collection[str] | None = None
    census: Census | None = None


@dataclass(frozen=True, slots=True)
class Scanned:
    report: ScanReport
    census: Census
    scope: Scope | None  # None: the whole root was walked


def run_scan(settings: Settings, store: ScanStore, now: datetime, ask: Ask) -> Scanned:
    started = time.perf_counter()
    with _gc_paused():
        known = store.file_states()
        digest = site_digest(settings.site)
        renormalise = store.settings_digest() != digest
        conditions = Conditions(now, settings.content.settle_seconds, renormalise)
        last = store.last_scan()
        todo, found, scope = _look(settings, known, conditions, ask, last)
        facts = ScanReport(
            started_at=now,
            resources=len(found.resources),
            documents=len(found.files) + (scope.plain if scope is not None else 0),
            ignored=found.ignored,
        )
        census = Census(frozenset(found.resources), frozenset(found.ignored_paths))
        # Free the fingerprints before the collector is back: its first pass
        # would otherwise walk every one of them (about 50 ms at 50,000 files).
        del found
        run = _prepare(FileReader(settings, now, renormalise), store, todo, known, last)
    with store.scan_writer(now) as writer:
        run.read_all(writer, ask.progress, _workers(ask.workers, len(todo.read)))
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
    return Scanned(report, census, scope)


def _look(
    settings: Settings,
    known: Mapping[str, FileState],
    conditions: Conditions,
    ask: Ask,
    last: ScanState | None,
) -> tuple[ScanPlan, Discovery, Scope | None]:
    """Discover (at the scope's paths, or the whole root) and plan; the scope used."""
    content = settings.content
    scope = scope_for(ask.paths, ask.census, known, renormalise=conditions.renormalise)
    if scope is not None:
        found = discover_paths(
            settings.content_root,
            scope.paths,
            content.ignore,
            content.max_file_bytes,
            content.rules,
        )
        if found is not None:
            errors = last.report.errors if last is not None else ()
            todo, whole = plan_scoped(found, scope, conditions, errors)
            return todo, whole, scope
    found = discover(
        settings.content_root, content.ignore, content.max_file_bytes, ask.listings, content.rules
    )
    return plan(found, known, conditions), found, None


@dataclass(frozen=True, slots=True)
class _Run:
    """One scan being applied: its plan, the stored rows it needed, and its ledger."""

    reader: FileReader
    store: ScanStore
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
    reader: FileReader,
    store: ScanStore,
    todo: ScanPlan,
    known: Mapping[str, FileState],
    last: ScanState | None,
) -> _Run:
    """What the store must say before reading: who holds each id, the rows of the
    files to read, the warnings that carry over."""
    held = NO_HOLDINGS
    if not todo.idle:
        claimed = stored_claims(known)
        ids = claimed.failing_ids()
        held = holdings(claimed, store.item_sources(ids) if ids else {})
    carried = carried_warnings(last.report.warnings if last is not None else (), known, todo)
    wanted = rows_wanted(todo, known, held)
    rows = store.files(wanted) if wanted else {}
    ledger = Ledger(todo, start_claims(todo, held, rows), reader.now, carried)
    return _Run(reader, store, todo, known, rows, held.waiting, ledger)


def _stage(store: ScanStore, writer: ScanWriter, ledger: Ledger) -> None:
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
    return max(1, len(os.sched_getaffinity(0)))  # one per core: the scan mostly waits on them
