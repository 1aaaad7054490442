"""The rescan: discover -> parse -> normalise -> store, shared by watcher, API and CLI.

Owns deciding what changed and asking the store to apply it in one go. It
does not care how files are parsed or how items are persisted, and it never
reads the clock itself: the caller passes ``clock``. ``Scanner`` adds the
guarantee that two scans never run at once (threads share one scan; other
processes and hosts wait on the store's scan lock).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from feedsvc.discover import VANISHED_REASON, Discovery, discover, file_hash, read_source
from feedsvc.errors import ContentRootError, SourceError, StoreError
from feedsvc.normalise import normalise, site_digest
from feedsvc.parse import parse_document
from feedsvc.settings import Settings
from feedsvc.store import ScanChanges, ScanFailure, ScanState, Store
from feedsvc.types import FileError, Item, ScanReport, SourceFile, StoredFile

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]


def _mtime(source: SourceFile, now: datetime) -> datetime:
    # A file stamped in the future (clock skew, a restored backup) must not
    # date an item in the future: clamp to the scan's own time.
    return min(datetime.fromtimestamp(source.mtime_ns / 1e9, tz=UTC), now)


@dataclass(slots=True)
class _Plan:
    """Mutable working state of one scan (never leaves this module)."""

    files: list[StoredFile]
    items: list[Item]
    removed_items: list[str]
    errors: list[FileError]
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def scan(
    settings: Settings,
    store: Store,
    *,
    now: datetime,
    progress: Progress | None = None,
) -> ScanReport:
    """Rescan the content root once and apply what changed; return the report.

    Raises ``ContentRootError`` (changing nothing) when the root is missing,
    unreadable or empty. Every per-file problem lands in ``report.errors``
    and the file's item keeps its last good version.
    """
    started = time.perf_counter()
    root = settings.content_root
    found: Discovery = discover(root, settings.content.ignore, settings.content.max_file_bytes)
    stored = store.files()
    digest = site_digest(settings.site)
    renormalise = store.settings_digest() != digest

    plan = _Plan(files=[], items=[], removed_items=[], errors=[])
    present = {source.path for source in found.files}
    failing = {error.path: error.error for error in found.errors}
    owners = {f.item_id: f.path for f in stored.values() if f.item_id is not None}

    to_read: list[SourceFile] = []
    for source in found.files:
        prev = stored.get(source.path)
        if (
            prev is not None
            and not renormalise
            and prev.size == source.size
            and prev.mtime_ns == source.mtime_ns
        ):
            plan.unchanged += 1
            if prev.error:
                plan.errors.append(FileError(source.path, prev.error))
            continue
        to_read.append(source)

    for done, source in enumerate(to_read, 1):
        _scan_file(
            settings,
            store,
            source,
            prev=stored.get(source.path),
            now=now,
            owners=owners,
            plan=plan,
            renormalise=renormalise,
        )
        if progress is not None:
            progress(done, len(to_read))

    # Files discovery could see but not accept (over the size cap, a symbolic
    # link, an unreadable folder): keep their last good items, record the reason.
    gone: list[str] = []
    for path in sorted(stored):
        if path in present:
            continue
        reason = _failing_reason(path, failing)
        if reason is None:
            gone.append(path)
            continue
        prev = stored[path]
        if prev.error != reason:
            plan.files.append(replace(prev, error=reason))
    plan.errors.extend(FileError(path, reason) for path, reason in failing.items())

    removed = sum(1 for p in gone if stored[p].item_id is not None)
    changes = ScanChanges(
        files=tuple(plan.files),
        items=tuple(plan.items),
        removed_paths=tuple(gone),
        removed_items=tuple(plan.removed_items),
        settings_digest=digest if renormalise else None,
    )
    generation = store.apply(changes)
    for error in plan.errors:
        log.debug("problem in %s: %s", error.path, error.error)
    return ScanReport(
        added=plan.added,
        updated=plan.updated,
        removed=removed,
        unchanged=plan.unchanged,
        errors=tuple(sorted(plan.errors, key=lambda e: e.path)),
        duration_ms=round((time.perf_counter() - started) * 1000),
        started_at=now,
        generation=generation,
    )


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


def _scan_file(
    settings: Settings,
    store: Store,
    source: SourceFile,
    *,
    prev: StoredFile | None,
    now: datetime,
    owners: Mapping[str, str],
    plan: _Plan,
    renormalise: bool,
) -> None:
    """Read, parse and normalise one new or changed file into ``plan``."""
    try:
        data = read_source(settings.content_root, source, settings.content.max_file_bytes)
    except SourceError as exc:
        if exc.reason == VANISHED_REASON:
            # Deleted (or renamed away) since discovery: not a problem with the
            # file. Nothing changes now; the next scan sees it gone.
            log.debug("%s vanished during the scan", source.path)
            return
        _fail(plan, source, prev, None, exc)
        return
    digest = file_hash(data)
    if prev is not None and prev.file_hash == digest and prev.error is None and not renormalise:
        # Touched, or rewritten with the same bytes: remember the new
        # fingerprint so the file is not read again; the item stays as is.
        plan.files.append(replace(prev, size=source.size, mtime_ns=source.mtime_ns))
        plan.unchanged += 1
        return
    mtime = _mtime(source, now)
    first_seen = prev.first_seen if prev is not None else mtime
    content_changed = prev is None or prev.file_hash != digest
    changed_at = max(mtime, first_seen) if content_changed else prev.changed_at  # type: ignore[union-attr]
    try:
        item = normalise(
            parse_document(source.path, data),
            settings.site,
            first_seen=first_seen,
            changed_at=changed_at,
        )
    except SourceError as exc:
        _fail(plan, source, prev, digest, exc)
        return
    owner = owners.get(item.id)
    if owner is not None and owner != source.path:
        error = SourceError(source.path, f"id {item.id!r} is already used by {owner}")
        _fail(plan, source, prev, digest, error)
        return
    plan.files.append(
        StoredFile(
            path=source.path,
            size=source.size,
            mtime_ns=source.mtime_ns,
            file_hash=digest,
            item_id=item.id,
            first_seen=first_seen,
            changed_at=changed_at,
        )
    )
    if prev is not None and prev.item_id is not None and prev.item_id != item.id:
        plan.removed_items.append(prev.item_id)
    previous = store.item(item.id) if prev is not None and prev.item_id == item.id else None
    if previous is None:
        plan.added += 1
        plan.items.append(item)
    elif previous.content_hash != item.content_hash:
        plan.updated += 1
        plan.items.append(item)
    else:
        plan.unchanged += 1


def _fail(
    plan: _Plan,
    source: SourceFile,
    prev: StoredFile | None,
    digest: str | None,
    exc: SourceError,
) -> None:
    """Record a failing file; its item (if any) keeps its last good version."""
    plan.errors.append(FileError(source.path, exc.reason))
    log.warning("cannot use %s: %s", source.path, exc.reason)
    if prev is None:
        # Remember the failure with the fingerprint so an unchanged bad file
        # is reported, not re-read, on the next scan.
        stamp = datetime.fromtimestamp(source.mtime_ns / 1e9, tz=UTC)
        plan.files.append(
            StoredFile(
                path=source.path,
                size=source.size,
                mtime_ns=source.mtime_ns,
                file_hash=digest or "",
                item_id=None,
                first_seen=stamp,
                changed_at=stamp,
                error=exc.reason,
            )
        )
        return
    plan.files.append(
        replace(
            prev,
            size=source.size,
            mtime_ns=source.mtime_ns,
            file_hash=digest or prev.file_hash,
            error=exc.reason,
        )
    )


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

    def __init__(self, settings: Settings, store: Store, clock: Clock) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self._mutex = threading.Lock()
        self._done = threading.Condition(self._mutex)
        self._running = False
        self._runs = 0
        self._last: ScanReport | None = None
        self._failure: BaseException | None = None
        self.last_failure: ScanFailure | None = None

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

    def _run_locked(self, progress: Progress | None) -> ScanReport:
        try:
            report = self._run_exclusive(progress)
        except (ContentRootError, StoreError) as exc:
            self._note_failure(exc)
            raise
        self.last_failure = None
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
        report = scan(self._settings, self._store, now=self._clock(), progress=progress)
        self._store.record_scan(ScanState(report, finished_at=self._clock()))
        log.info("scan finished: %s", report.summary())
        return report
