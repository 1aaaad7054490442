"""The rescan: discover -> parse -> normalise -> store, shared by watcher, API and CLI.

Owns deciding what changed and asking the store to apply it in one go. It
does not care how files are parsed or how items are persisted, and it never
reads the clock itself: the caller passes ``clock``. ``Scanner`` adds the
guarantee that two scans never run at once (threads share one scan; other
processes and hosts wait on the store's scan lock).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import islice

from feedsvc import budget, health
from feedsvc.budget import BudgetRunner
from feedsvc.claims import Claims, collision_reason
from feedsvc.dates import first_seen
from feedsvc.discover import (
    CHANGING_REASON,
    VANISHED_REASON,
    Discovery,
    Listings,
    discover,
    file_hash,
    read_source,
)
from feedsvc.errors import ContentRootError, SourceError, StoreError
from feedsvc.normalise import normalise_document, site_digest
from feedsvc.normalise.conventions import not_an_item
from feedsvc.parse import parse_document
from feedsvc.settings import Settings
from feedsvc.store import ScanChanges, ScanFailure, ScanState, ScanWriter, Store
from feedsvc.types import (
    FileError,
    FileState,
    FileWarning,
    Item,
    ScanReport,
    SourceFile,
    StoredFile,
)

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]


# Items handed to the store per chunk: bounds a scan's memory (a cold scan of
# 50,000 files never holds more than this many items) without costing round trips.
STAGE_ITEMS = 500
# A scan that reads at least this many files spreads parsing over a process
# pool (spawned processes start in about a second, so small scans stay serial).
POOL_MIN_FILES = 2000
# Files per task sent to a pool process, and tasks in flight per process:
# enough to keep every process busy, few enough to bound memory.
_POOL_BATCH = 64
_POOL_AHEAD = 3


@dataclass(slots=True)
class _Plan:
    """Mutable working state of one scan (never leaves this module).

    ``files`` and ``items`` hold only what was not staged yet; ``pending``
    pairs each unstaged item with whether its file held that id before.
    """

    files: list[StoredFile]
    pending: list[tuple[Item, bool]]
    removed_items: list[str]
    errors: list[FileError]
    deferred: list[str]  # files still being written: read again by the next scan
    warnings: list[FileWarning] = field(default_factory=list)
    # Files read in this scan claiming an id held by another or still open, by id.
    candidates: dict[str, list[_Candidate]] = field(default_factory=dict)
    moved_from: set[str] = field(default_factory=set)  # gone files whose item moved
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # documents that are not items (normalise.conventions)
    dropped: int = 0  # items removed because their file is no longer an item


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What reading, parsing and normalising one file gave (picklable, for the pool).

    Exactly one of: ``vanished``; ``changing`` (written to while read); ``same``
    (new fingerprint, same bytes); ``error`` (the reason; ``digest`` set if the
    bytes were read); ``skipped`` (why the document is not an item); ``item``.
    """

    digest: str | None = None
    vanished: bool = False
    changing: bool = False
    same: bool = False
    error: str | None = None
    item: Item | None = None
    skipped: str | None = None
    first_seen: datetime | None = None
    changed_at: datetime | None = None
    warnings: tuple[str, ...] = ()


def scan(
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
    root = settings.content_root
    with _gc_paused():
        found: Discovery = discover(
            root,
            settings.content.ignore,
            settings.content.max_file_bytes,
            listings,
            settings.content.rules,
        )
        resources = len(found.resources)
        documents, ignored = len(found.files), found.ignored
        states = store.file_states()
        digest = site_digest(settings.site)
        renormalise = store.settings_digest() != digest

        plan = _Plan(files=[], pending=[], removed_items=[], errors=[], deferred=[])
        failing = {error.path: error.error for error in found.errors}
        settling = _Settling(now, settings.content.settle_seconds)

        to_read: list[SourceFile] = []
        claiming: dict[str, tuple[str, str]] = {}  # unchanged failing files: (id, error)
        known = 0  # found files the store has a row for
        for source in found.files:
            prev = states.get(source.path)
            if prev is None:
                if settling.recent(source):
                    plan.deferred.append(source.path)
                else:
                    to_read.append(source)
                continue
            known += 1
            if prev.size == source.size and prev.mtime_ns == source.mtime_ns:
                if not renormalise:
                    if prev.error and prev.item_id is not None:
                        # A failing holder, or a refused claimant: told apart below.
                        claiming[source.path] = (prev.item_id, prev.error)
                        continue
                    if prev.item_id is None and not prev.error:
                        plan.skipped += 1  # a document that is not an item, as last time
                    else:
                        plan.unchanged += 1
                    if prev.error:
                        plan.errors.append(FileError(source.path, prev.error))
                    continue
            elif settling.recent(source):
                plan.deferred.append(source.path)
                continue
            to_read.append(source)
        gone: list[str] = []
        if known < len(states):  # some stored file was not found (else none is gone)
            present = {source.path for source in found.files}
            gone = sorted(path for path in states if path not in present)
        holders, waiting = _holders(store, states) if to_read or gone or claiming else ({}, {})
        # Warnings are not kept per file: those of files not read again carry
        # over from the last report, so every report lists them all.
        plan.warnings += _carried_warnings(store, states, {s.path for s in to_read}, set(gone))
        # Full rows (with dates) only for the files that need them: the read ones,
        # the unreadable ones whose error is recorded on their row, and gone
        # holders (a moved file takes over their dates).
        wanted = [s.path for s in to_read if s.path in states]
        wanted += [
            path
            for path in gone
            if _failing_reason(path, failing) is not None or path in holders.values()
        ]
        stored = store.files(wanted) if wanted else {}
        claims = Claims(
            holders,
            (stored[p] for p in gone if p in stored and _failing_reason(p, failing) is None),
            waiting,
        )
        waiting_paths = {path for paths in waiting.values() for path in paths}
        sources = {s.path: s for s in found.files if s.path in waiting_paths}
        # Free the fingerprints before the collector is back: its first pass
        # would otherwise walk every one of them (about 50 ms at 50,000 files).
        del found

    # claims.py: of the files read now, the one seen first claims an id first.
    to_read.sort(key=lambda s: (_seen(s, stored.get(s.path), now), s.path))
    work = [(source, stored.get(source.path)) for source in to_read]

    def redo(
        source: SourceFile, prev: StoredFile | None, moved_from: StoredFile | None
    ) -> _Outcome:
        return _process(
            settings, source, prev, now=now, renormalise=renormalise, moved_from=moved_from
        )

    reread_paths: set[str] = set()

    def reread(path: str) -> _Candidate | None:
        reread_paths.add(path)
        source = sources.get(path)
        prev = store.files([path]).get(path)
        if source is None or prev is None:
            return None
        outcome = redo(source, prev, None)
        return None if outcome.item is None else (source, prev, outcome)

    with ExitStack() as stack:
        writer = stack.enter_context(store.scan_writer(now))
        outcomes = stack.enter_context(
            closing(_outcomes(settings, work, now, renormalise, _workers(workers, len(work))))
        )
        for done, ((source, prev_file), outcome) in enumerate(zip(work, outcomes, strict=True), 1):
            _record(source, prev_file, outcome, claims=claims, plan=plan, now=now, redo=redo)
            if len(plan.pending) >= STAGE_ITEMS:
                _stage(store, writer, plan)
            if progress is not None:
                progress(done, len(work))
        _settle_open_ids(plan, claims, waiting, reread)
        for path, (item_id, error) in claiming.items():
            if path in reread_paths:
                continue  # decided again above
            holder = claims.holder(item_id)
            if holder == path:  # a holder that fails: its last good item stays
                plan.unchanged += 1
                plan.errors.append(FileError(path, error))
            elif holder is not None:  # still waiting: say for whom, on every scan
                plan.errors.append(FileError(path, collision_reason(item_id, holder)))
        _stage(store, writer, plan)

        # Files discovery could see but not accept (over the size cap, a symbolic
        # link, an unreadable folder): keep their last good items, record the reason.
        removed_paths: list[str] = []
        for path in gone:
            reason = _failing_reason(path, failing)
            if reason is None:
                removed_paths.append(path)
                continue
            prev_row = stored[path]
            if prev_row.error != reason:
                plan.files.append(replace(prev_row, error=reason))
        plan.errors.extend(FileError(path, reason) for path, reason in failing.items())

        removed = plan.dropped + sum(
            1
            for p in removed_paths
            if claims.held_before(p, states[p].item_id) and p not in plan.moved_from
        )
        changes = ScanChanges(
            files=_latest(plan.files),
            removed_paths=tuple(removed_paths),
            removed_items=tuple(plan.removed_items),
            settings_digest=digest if renormalise else None,
        )
        generation = writer.commit(changes)
    items = store.item_counts(now)
    for problem in plan.errors:
        log.debug("problem in %s: %s", problem.path, problem.error)
    return ScanReport(
        added=plan.added,
        updated=plan.updated,
        removed=removed,
        unchanged=plan.unchanged,
        errors=tuple(sorted(plan.errors, key=lambda e: e.path)),
        warnings=tuple(sorted(dict.fromkeys(plan.warnings), key=lambda e: e.path)),
        duration_ms=round((time.perf_counter() - started) * 1000),
        started_at=now,
        generation=generation,
        pending=tuple(sorted(plan.deferred)),
        resources=resources,
        skipped=plan.skipped,
        documents=documents,
        ignored=ignored,
        items=items,
    )


# A modification time this far past the scan's start is clock skew, not a write
# during the scan (docs/operations.md, "Settled files").
_SKEW_NS = 300 * 10**9


class _Settling:
    """Which files were modified too recently to be read (``content.settle_seconds``).

    Decided from the scan's ``now`` and the file's own modification time, so
    it needs no clock and no second look at the folder; a file changing while
    it is read is caught by ``read_source`` (``CHANGING_REASON``). A file
    stamped after ``now`` was written while this scan ran (``now`` is taken
    before the folder is listed), unless it is stamped further ahead than any
    scan lasts: that is clock skew, which the time cannot judge, and it is
    left to the second check.
    """

    __slots__ = ("_now_ns", "_settle_ns")

    def __init__(self, now: datetime, settle_seconds: int) -> None:
        epoch = now - datetime(1970, 1, 1, tzinfo=UTC)
        self._now_ns = (epoch.days * 86_400 + epoch.seconds) * 10**9 + epoch.microseconds * 1000
        self._settle_ns = settle_seconds * 10**9

    def recent(self, source: SourceFile) -> bool:
        if not self._settle_ns:
            return False
        return -_SKEW_NS < self._now_ns - source.mtime_ns < self._settle_ns


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


def _stage(store: Store, writer: ScanWriter, plan: _Plan) -> None:
    """Classify the pending items against the store, hand the changed ones and the
    pending file rows to the writer, and forget them."""
    if not plan.pending and not plan.files:
        return
    known = store.item_hashes([item.id for item, had_it in plan.pending if had_it])
    changed: list[Item] = []
    for item, had_it in plan.pending:
        previous = known.get(item.id) if had_it else None
        if previous is None:
            plan.added += 1
            changed.append(item)
        elif previous != item.content_hash:
            plan.updated += 1
            changed.append(item)
        else:
            plan.unchanged += 1
    writer.stage(_latest(plan.files), changed)
    plan.files.clear()
    plan.pending.clear()


def _carried_warnings(
    store: Store, states: Mapping[str, FileState], read: set[str], gone: set[str]
) -> list[FileWarning]:
    """The last report's warnings about files this scan does not read again."""
    last = store.last_scan()
    if last is None:
        return []
    return [
        w
        for w in last.report.warnings
        if w.path in states and w.path not in read and w.path not in gone
    ]


def _latest(files: list[StoredFile]) -> tuple[StoredFile, ...]:
    """One row per path, the last one recorded (a refused file may win later in the scan)."""
    return tuple({f.path: f for f in files}.values())


def _holders(
    store: Store, states: Mapping[str, FileState]
) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """(id -> the file holding it, id -> files waiting for it), from the stored rows.

    A file row without an error that names an id holds it. A failing row that
    names one either holds it (its last good item is stored) or was refused
    and waits: the store says which file the item came from.
    """
    holders: dict[str, str] = {}
    failing: dict[str, str] = {}
    for path, state in states.items():
        if state.item_id is None:
            continue
        if state.error:
            failing[path] = state.item_id
        else:
            holders[state.item_id] = path
    waiting: dict[str, list[str]] = {}
    if failing:
        sources = store.item_sources(set(failing.values()))
        for path, item_id in sorted(failing.items()):
            if sources.get(item_id) == path:
                holders[item_id] = path
            else:
                waiting.setdefault(item_id, []).append(path)
    return holders, {item_id: tuple(paths) for item_id, paths in waiting.items()}


def _seen(source: SourceFile, prev: StoredFile | None, now: datetime) -> datetime:
    return prev.first_seen if prev is not None else first_seen(source.mtime_ns, now)


def _failing_reason(path: str, failing: Mapping[str, str]) -> str | None:
    """Why a stored path is not readable now: its own error or its folder's."""
    if path in failing:
        return failing[path]
    parts = path.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        reason = failing.get("/".join(parts[:depth]))
        if reason is not None:
            return reason
    return None


def _process(
    settings: Settings,
    source: SourceFile,
    prev: StoredFile | None,
    *,
    now: datetime,
    renormalise: bool,
    runner: BudgetRunner | None = None,
    moved_from: StoredFile | None = None,
) -> _Outcome:
    """Read, parse and normalise one new or changed file; no store, no shared state.

    ``runner``: where a heavy file is parsed under its budget (None: here).
    ``moved_from``: the row of the file this one is the moved copy of (claims.py):
    its first-seen and change times carry over, so the item's dates stay.
    """
    try:
        data = read_source(settings.content_root, source, settings.content.max_file_bytes)
    except SourceError as exc:
        if exc.reason == VANISHED_REASON:
            return _Outcome(vanished=True)
        if exc.reason == CHANGING_REASON:
            return _Outcome(changing=True)
        return _Outcome(error=exc.reason)
    digest = file_hash(data)
    if prev is not None and prev.file_hash == digest and prev.error is None and not renormalise:
        return _Outcome(digest=digest, same=True)
    seen = first_seen(source.mtime_ns, now)
    changed_at = None
    known = prev if prev is not None else moved_from
    if known is not None:
        seen = known.first_seen
        changed_at = known.changed_at
        # docs/dates.md: only new bytes in a file that already made an item
        # are a change; a file's first good version is its first publication.
        if known.item_id is not None and known.file_hash != digest:
            changed_at = max(first_seen(source.mtime_ns, now), known.changed_at or seen)
    refused = budget.precheck(data)
    if refused is not None:
        return _Outcome(digest=digest, error=refused)
    args = (settings, source.path, data, seen, changed_at)
    outcome: _Outcome
    if runner is not None and budget.is_heavy(data):
        finished, result = runner.run(*args)
        if finished:
            outcome = result
        else:
            outcome = _Outcome(error=budget.time_reason(_budget_seconds(settings)))
    else:
        outcome = _parse_item(*args)
    return replace(outcome, digest=digest)


def _parse_item(
    settings: Settings, path: str, data: bytes, seen: datetime, changed_at: datetime | None
) -> _Outcome:
    """Parse and normalise one file's bytes (the outcome has no digest yet)."""
    try:
        raw = parse_document(path, data)
        for warning in raw.warnings:
            log.warning("%s: %s", path, warning)
        skipped = not_an_item(raw)
        if skipped is not None:
            return _Outcome(skipped=skipped, first_seen=seen, changed_at=changed_at)
        done = normalise_document(
            raw,
            settings.site,
            first_seen=seen,
            changed_at=changed_at,
            rules=settings.content.rules,
        )
    except SourceError as exc:
        return _Outcome(error=exc.reason)
    except MemoryError:  # under the address-space cap of a pool or helper process
        return _Outcome(error=budget.memory_reason(settings.content.file_memory_mb))
    return _Outcome(
        item=done.item,
        first_seen=seen,
        changed_at=changed_at,
        warnings=raw.warnings + done.warnings,
    )


def _budget_seconds(settings: Settings) -> float:
    return float(settings.content.file_budget_seconds)


def _warm_up_args(
    settings: Settings, now: datetime
) -> tuple[Settings, str, bytes, datetime, datetime | None]:
    """A small document whose parse loads every import and language model once."""
    text = b"# Warming up\n\nA short paragraph of plain English prose, parsed once.\n"
    return (settings, "warm-up.md", text, now, now)


_Redo = Callable[[SourceFile, StoredFile | None, StoredFile | None], _Outcome]
# A file read in this scan that claims an id still open (claims.py), with what it gave.
_Candidate = tuple[SourceFile, StoredFile | None, _Outcome]


def _record(
    source: SourceFile,
    prev: StoredFile | None,
    outcome: _Outcome,
    *,
    claims: Claims,
    plan: _Plan,
    now: datetime,
    redo: _Redo,
) -> None:
    """Fold one file's outcome into ``plan`` (the bookkeeping half of a file's scan).

    ``redo(source, prev, moved_from)`` reads the file again with other dates
    (a moved file takes over its old row's first-seen time).
    """
    if outcome.vanished:
        # Deleted (or renamed away) since discovery: not a problem with the
        # file. Nothing changes now; the next scan sees it gone.
        log.debug("%s vanished during the scan", source.path)
        return
    if outcome.changing:
        # Half-written, perhaps: keep the last good version, read it next time.
        log.info("%s is still being written: left for the next scan", source.path)
        plan.deferred.append(source.path)
        return
    if outcome.same:
        # Touched, or rewritten with the same bytes: remember the new
        # fingerprint so the file is not read again; the item stays as is.
        assert prev is not None
        plan.files.append(replace(prev, size=source.size, mtime_ns=source.mtime_ns))
        if prev.item_id is None:
            plan.skipped += 1
        else:
            plan.unchanged += 1
        return
    if outcome.error is not None:
        _fail(plan, source, prev, outcome.digest, outcome.error, now=now)
        return
    if outcome.skipped is not None:
        _skip(plan, claims, source, prev, outcome)
        return
    item = outcome.item
    assert item is not None and outcome.first_seen is not None
    _let_go(plan, claims, source.path, prev, item.id)
    claim = claims.claim(source.path, item.id, outcome.digest or "")
    if claim.verdict == "refuse":
        assert claim.holder is not None
        _refuse(plan, source, outcome, item.id, claim.holder)
        plan.candidates.setdefault(item.id, []).append((source, prev, outcome))
        return
    if claim.verdict == "open":
        plan.candidates.setdefault(item.id, []).append((source, prev, outcome))
        return
    if claim.verdict == "move":
        assert claim.moved_from is not None
        moved = redo(source, None, claim.moved_from)
        if moved.item is None or moved.item.id != item.id:  # changed since: an ordinary file
            claims.release(source.path, item.id)
            _record(source, prev, moved, claims=claims, plan=plan, now=now, redo=redo)
            return
        plan.moved_from.add(claim.moved_from.path)
        _accept(plan, claims, source, moved, had_it=True)
        return
    _accept(plan, claims, source, outcome, had_it=claims.held_before(source.path, item.id))


def _accept(
    plan: _Plan, claims: Claims, source: SourceFile, outcome: _Outcome, *, had_it: bool
) -> None:
    """``source`` holds its item's id: its row and item go to the store."""
    item = outcome.item
    assert item is not None
    plan.warnings.extend(FileWarning(source.path, warning) for warning in outcome.warnings)
    plan.files.append(_stored(source, outcome, item.id))
    if item.id in plan.removed_items:  # freed earlier in this scan, taken again
        plan.removed_items.remove(item.id)
    plan.pending.append((item, had_it))


def _let_go(
    plan: _Plan, claims: Claims, path: str, prev: StoredFile | None, keeps: str | None
) -> None:
    """A file that held an id and now claims another (or none) frees it; its item goes."""
    if prev is None or prev.item_id is None or prev.item_id == keeps:
        return
    if claims.held_before(path, prev.item_id) and claims.holder(prev.item_id) == path:
        claims.release(path, prev.item_id)
        plan.removed_items.append(prev.item_id)


def _refuse(plan: _Plan, source: SourceFile, outcome: _Outcome, item_id: str, holder: str) -> None:
    """Record a file whose id another file holds: its row keeps the claim, with the error."""
    reason = collision_reason(item_id, holder)
    plan.errors.append(FileError(source.path, reason))
    log.warning("cannot use %s: %s", source.path, reason)
    plan.files.append(replace(_stored(source, outcome, item_id), error=reason))


def _settle_open_ids(
    plan: _Plan,
    claims: Claims,
    waiting: Mapping[str, tuple[str, ...]],
    reread: Callable[[str], _Candidate | None],
) -> None:
    """Give each id whose holder left to the candidate seen first (claims.py).

    Candidates: files of this scan that claimed it, and files that waited for
    it since earlier scans (``waiting``: id -> paths), read again now.
    """
    for item_id in claims.open_ids():
        candidates = plan.candidates.pop(item_id, [])
        read = {source.path for source, _, _ in candidates}
        for path in waiting.get(item_id, ()):
            if path in read:
                continue
            again = reread(path)
            if again is None:
                continue
            if again[2].item is not None and again[2].item.id == item_id:
                candidates.append(again)
                read.add(path)
        if not candidates:
            claims.close(item_id)
            continue
        candidates.sort(key=lambda c: (c[2].first_seen, c[0].path))
        (source, _, outcome), losers = candidates[0], candidates[1:]
        claims.give(item_id, source.path)
        plan.errors[:] = [e for e in plan.errors if e.path != source.path]
        _accept(plan, claims, source, outcome, had_it=False)
        for loser, _, lost in losers:
            plan.errors[:] = [e for e in plan.errors if e.path != loser.path]
            _refuse(plan, loser, lost, item_id, source.path)


def _stored(source: SourceFile, outcome: _Outcome, item_id: str | None) -> StoredFile:
    """The file row for a file read without error (``item_id`` None: not an item)."""
    assert outcome.first_seen is not None
    return StoredFile(
        path=source.path,
        size=source.size,
        mtime_ns=source.mtime_ns,
        file_hash=outcome.digest or "",
        item_id=item_id,
        first_seen=outcome.first_seen,
        changed_at=outcome.changed_at,
    )


def _skip(
    plan: _Plan, claims: Claims, source: SourceFile, prev: StoredFile | None, outcome: _Outcome
) -> None:
    """Record a document that is not an item: no id, no error; an item it was goes."""
    log.debug("%s: %s", source.path, outcome.skipped)
    plan.skipped += 1
    plan.files.append(_stored(source, outcome, None))
    removed = len(plan.removed_items)
    _let_go(plan, claims, source.path, prev, None)
    plan.dropped += len(plan.removed_items) - removed


def _fail(
    plan: _Plan,
    source: SourceFile,
    prev: StoredFile | None,
    digest: str | None,
    reason: str,
    *,
    now: datetime,
) -> None:
    """Record a failing file; its item (if any) keeps its last good version."""
    plan.errors.append(FileError(source.path, reason))
    log.warning("cannot use %s: %s", source.path, reason)
    if prev is None:
        # Remember the failure with the fingerprint so an unchanged bad file
        # is reported, not re-read, on the next scan.
        plan.files.append(
            StoredFile(
                path=source.path,
                size=source.size,
                mtime_ns=source.mtime_ns,
                file_hash=digest or "",
                item_id=None,
                first_seen=first_seen(source.mtime_ns, now),
                changed_at=None,
                error=reason,
            )
        )
        return
    plan.files.append(
        replace(
            prev,
            size=source.size,
            mtime_ns=source.mtime_ns,
            file_hash=digest or prev.file_hash,
            error=reason,
        )
    )


# --- the process pool ------------------------------------------------------------------------

_Work = tuple[SourceFile, StoredFile | None]
_pool_settings: Settings | None = None


def _outcomes(
    settings: Settings, work: list[_Work], now: datetime, renormalise: bool, workers: int
) -> Generator[_Outcome, None, None]:
    """The outcome of each file of ``work``, in order; parsed here or in ``workers`` processes."""
    if workers <= 1:
        # Heavy files go to a helper process with a time and memory budget.
        runner = BudgetRunner(
            _parse_item,
            _budget_seconds(settings),
            settings.content.file_memory_mb,
            warm_up=_warm_up_args(settings, now),
        )
        try:
            for source, prev in work:
                yield _process(
                    settings, source, prev, now=now, renormalise=renormalise, runner=runner
                )
        finally:
            runner.close()
        return
    # spawn, not fork: the scan may run in a threaded server process, and a
    # forked child could inherit a lock some other thread held.
    pool = ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_pool_init,
        initargs=(settings, os.getpid()),
    )
    try:
        batches = iter([work[i : i + _POOL_BATCH] for i in range(0, len(work), _POOL_BATCH)])
        # A bounded window of tasks in flight: results are consumed in order,
        # and a slow consumer never lets finished results pile up in memory.
        # A submit may start a pool process: budget.interrupts_held keeps Ctrl-C
        # out of its start-up (the scan itself still gets it, right after).
        with budget.interrupts_held():
            window: deque[Future[list[_Outcome]]] = deque(
                pool.submit(_pool_batch, batch, now, renormalise)
                for batch in islice(batches, workers * _POOL_AHEAD)
            )
        while window:
            results = window.popleft().result()
            following = next(batches, None)
            if following is not None:
                with budget.interrupts_held():
                    window.append(pool.submit(_pool_batch, following, now, renormalise))
            yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _pool_init(settings: Settings, parent: int) -> None:
    global _pool_settings  # noqa: PLW0603 - one per pool process, set once at its start
    budget.child_setup(parent, settings.content.file_memory_mb)
    _parse_item(*_warm_up_args(settings, datetime.now(UTC)))  # not inside a file's budget
    _pool_settings = settings


def _pool_batch(batch: list[_Work], now: datetime, renormalise: bool) -> list[_Outcome]:
    """In a pool process: ``_process`` for each file of one batch."""
    assert _pool_settings is not None
    settings = _pool_settings
    seconds = _budget_seconds(settings)
    outcomes: list[_Outcome] = []
    for source, prev in batch:
        # Every file within its time budget: this is the pool process's main thread.
        try:
            with budget.under_budget(seconds):
                outcome = _process(settings, source, prev, now=now, renormalise=renormalise)
        except budget.OverBudget:
            outcome = _Outcome(error=budget.time_reason(seconds))
        outcomes.append(outcome)
    return outcomes


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
        # StoreError texts never carry a URL or password (store/sql.py);
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
