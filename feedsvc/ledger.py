"""What each file a scan read means for it: counts, file rows, items to stage, claims, errors.

Owns the bookkeeping half of a file's scan, after it was read; decides
only, and reads no file and no store (a moved or waiting file is read again
through the callbacks the executor passes in). What to read is ``plan.py``,
how ``fileread.py``, and who may hold an id ``claims.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime

from feedsvc.claims import Claims, collision_reason
from feedsvc.dates import first_seen
from feedsvc.outcome import Changing, Failed, Outcome, Parsed, Same, Skipped, Vanished
from feedsvc.plan import Departures, ScanPlan
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

# A file read in this scan that claims an id still open (claims.py), with what it gave.
Candidate = tuple[SourceFile, StoredFile | None, Parsed]
# Reads a file again: (source, its row, the row of the file it is the moved copy of).
Redo = Callable[[SourceFile, StoredFile | None, StoredFile | None], Outcome]
# Reads a waiting file again (by path) once the id it waits for is open.
Reread = Callable[[str], Candidate | None]


class Ledger:
    """One scan's working state while its files are read; lives in the executor for one scan.

    ``files`` and ``pending`` hold only what was not staged yet (``flush``);
    ``pending`` pairs each unstaged item with whether its file held that id
    before.
    """

    def __init__(
        self, scan: ScanPlan, claims: Claims, now: datetime, carried: Iterable[FileWarning] = ()
    ) -> None:
        """``carried``: warnings about files not read again (``plan.carried_warnings``)."""
        self.claims = claims
        self._now = now
        self.files: list[StoredFile] = []
        self.pending: list[tuple[Item, bool]] = []
        self.removed_items: list[str] = []
        self.errors: list[FileError] = list(scan.errors)
        self.deferred: list[str] = list(scan.deferred)
        self.warnings: list[FileWarning] = list(carried)
        # Files read in this scan claiming an id held by another or still open, by id.
        self._candidates: dict[str, list[Candidate]] = {}
        self._reread: set[str] = set()  # waiting files read again for an open id
        self.moved_from: set[str] = set()  # gone files whose item moved
        self.added = 0
        self.updated = 0
        self.unchanged = scan.unchanged
        self.skipped = scan.skipped
        self.dropped = 0  # items removed because their file is no longer an item
        self.removed = 0

    def record(
        self, source: SourceFile, prev: StoredFile | None, outcome: Outcome, redo: Redo
    ) -> None:
        """Fold one file's outcome in; ``prev``: its stored row (None: a new file).

        ``redo`` reads the file again with other dates (a moved file takes
        over its old row's first-seen time).
        """
        match outcome:
            case Vanished():
                # Deleted (or renamed away) since discovery: not a problem with the
                # file. Nothing changes now; the next scan sees it gone.
                log.debug("%s vanished during the scan", source.path)
            case Changing():
                # Half-written, perhaps: keep the last good version, read it next time.
                log.info("%s is still being written: left for the next scan", source.path)
                self.deferred.append(source.path)
            case Same():
                # Touched, or rewritten with the same bytes: remember the new
                # fingerprint so the file is not read again; the item stays as is.
                assert prev is not None
                self.files.append(replace(prev, size=source.size, mtime_ns=source.mtime_ns))
                if prev.item_id is None:
                    self.skipped += 1
                else:
                    self.unchanged += 1
            case Failed():
                self._fail(source, prev, outcome)
            case Skipped():
                self._skip(source, prev, outcome)
            case Parsed():
                self._claim(source, prev, outcome, redo)

    def _claim(
        self, source: SourceFile, prev: StoredFile | None, outcome: Parsed, redo: Redo
    ) -> None:
        item_id = outcome.item.id
        self._let_go(source.path, prev, item_id)
        claim = self.claims.claim(source.path, item_id, outcome.digest)
        if claim.verdict == "refuse":
            assert claim.holder is not None
            self._refuse(source, outcome, claim.holder)
            self._candidates.setdefault(item_id, []).append((source, prev, outcome))
        elif claim.verdict == "open":
            self._candidates.setdefault(item_id, []).append((source, prev, outcome))
        elif claim.verdict == "move":
            assert claim.moved_from is not None
            moved = redo(source, None, claim.moved_from)
            if not isinstance(moved, Parsed) or moved.item.id != item_id:
                # Changed since it was read: an ordinary file.
                self.claims.release(source.path, item_id)
                self.record(source, prev, moved, redo)
                return
            self.moved_from.add(claim.moved_from.path)
            self._accept(source, moved, had_it=True)
        else:
            self._accept(source, outcome, had_it=self.claims.held_before(source.path, item_id))

    def _accept(self, source: SourceFile, outcome: Parsed, *, had_it: bool) -> None:
        """``source`` holds its item's id: its row and item go to the store."""
        item = outcome.item
        self.warnings.extend(FileWarning(source.path, warning) for warning in outcome.warnings)
        self.files.append(_row(source, outcome, item.id))
        if item.id in self.removed_items:  # freed earlier in this scan, taken again
            self.removed_items.remove(item.id)
        self.pending.append((item, had_it))

    def _let_go(self, path: str, prev: StoredFile | None, keeps: str | None) -> None:
        """A file that held an id and now claims another (or none) frees it; its item goes."""
        if prev is None or prev.item_id is None or prev.item_id == keeps:
            return
        if self.claims.held_before(path, prev.item_id) and self.claims.holder(prev.item_id) == path:
            self.claims.release(path, prev.item_id)
            self.removed_items.append(prev.item_id)

    def _refuse(self, source: SourceFile, outcome: Parsed, holder: str) -> None:
        """Record a file whose id another file holds: its row keeps the claim, with the error."""
        item_id = outcome.item.id
        reason = collision_reason(item_id, holder)
        self.errors.append(FileError(source.path, reason))
        log.warning("cannot use %s: %s", source.path, reason)
        self.files.append(replace(_row(source, outcome, item_id), error=reason))

    def _skip(self, source: SourceFile, prev: StoredFile | None, outcome: Skipped) -> None:
        """Record a document that is not an item: no id, no error; an item it was goes."""
        log.debug("%s: %s", source.path, outcome.reason)
        self.skipped += 1
        self.files.append(_row(source, outcome, None))
        removed = len(self.removed_items)
        self._let_go(source.path, prev, None)
        self.dropped += len(self.removed_items) - removed

    def _fail(self, source: SourceFile, prev: StoredFile | None, outcome: Failed) -> None:
        """Record a failing file; its item (if any) keeps its last good version."""
        self.errors.append(FileError(source.path, outcome.reason))
        log.warning("cannot use %s: %s", source.path, outcome.reason)
        if prev is None:
            # Remember the failure with the fingerprint so an unchanged bad file
            # is reported, not re-read, on the next scan.
            row = StoredFile(
                path=source.path,
                size=source.size,
                mtime_ns=source.mtime_ns,
                file_hash=outcome.digest or "",
                item_id=None,
                first_seen=first_seen(source.mtime_ns, self._now),
                changed_at=None,
                error=outcome.reason,
            )
        else:
            row = replace(
                prev,
                size=source.size,
                mtime_ns=source.mtime_ns,
                file_hash=outcome.digest or prev.file_hash,
                error=outcome.reason,
            )
        self.files.append(row)

    def settle_open_ids(self, waiting: Mapping[str, tuple[str, ...]], reread: Reread) -> None:
        """Give each id whose holder left to the candidate seen first (claims.py).

        Candidates: files of this scan that claimed it, and files that waited
        for it since earlier scans (``waiting``: id -> paths), read again now.
        """
        for item_id in self.claims.open_ids():
            candidates = self._candidates.pop(item_id, [])
            read = {source.path for source, _, _ in candidates}
            for path in waiting.get(item_id, ()):
                if path in read:
                    continue
                self._reread.add(path)
                again = reread(path)
                if again is not None and again[2].item.id == item_id:
                    candidates.append(again)
                    read.add(path)
            if not candidates:
                self.claims.close(item_id)
                continue
            candidates.sort(key=lambda c: (c[2].times.first_seen, c[0].path))
            (source, _, outcome), losers = candidates[0], candidates[1:]
            self.claims.give(item_id, source.path)
            self.errors[:] = [e for e in self.errors if e.path != source.path]
            self._accept(source, outcome, had_it=False)
            for loser, _, lost in losers:
                self.errors[:] = [e for e in self.errors if e.path != loser.path]
                self._refuse(loser, lost, source.path)

    def judge_claiming(self, claiming: Mapping[str, tuple[str, str]]) -> None:
        """Count the unchanged failing files that name an id (``ScanPlan.claiming``)."""
        for path, (item_id, error) in claiming.items():
            if path in self._reread:
                continue  # decided in settle_open_ids
            holder = self.claims.holder(item_id)
            if holder == path:  # a holder that fails: its last good item stays
                self.unchanged += 1
                self.errors.append(FileError(path, error))
            elif holder is not None:  # still waiting: say for whom, on every scan
                self.errors.append(FileError(path, collision_reason(item_id, holder)))

    def held_ids(self) -> list[str]:
        """Ids of the pending items whose file held them before: the ones the store may have."""
        return [item.id for item, had_it in self.pending if had_it]

    def flush(self, hashes: Mapping[str, str]) -> tuple[tuple[StoredFile, ...], list[Item]]:
        """The pending file rows and the items that changed, counted and forgotten.

        ``hashes``: the stored content hash of each of ``held_ids()`` the store
        has. This is the one place that decides whether an item changed.
        """
        changed: list[Item] = []
        for item, had_it in self.pending:
            previous = hashes.get(item.id) if had_it else None
            if previous is None:
                self.added += 1
                changed.append(item)
            elif previous != item.content_hash:
                self.updated += 1
                changed.append(item)
            else:
                self.unchanged += 1
        files = self.latest_files()
        self.files.clear()
        self.pending.clear()
        return files, changed

    def depart(self, departures: Departures, known: Mapping[str, FileState]) -> None:
        """Fold in what became of the stored files not found (``plan.departures``)."""
        self.files.extend(departures.kept)
        self.errors.extend(departures.errors)
        self.removed = self.dropped + sum(
            1
            for path in departures.removed
            if self.claims.held_before(path, known[path].item_id) and path not in self.moved_from
        )

    def latest_files(self) -> tuple[StoredFile, ...]:
        """One row per path, the last one recorded (a refused file may win later in the scan)."""
        return tuple({f.path: f for f in self.files}.values())

    def report(self, facts: ScanReport) -> ScanReport:
        """``facts`` (what the executor measured) with this scan's counts and problems."""
        return replace(
            facts,
            added=self.added,
            updated=self.updated,
            removed=self.removed,
            unchanged=self.unchanged,
            skipped=self.skipped,
            errors=tuple(sorted(self.errors, key=lambda e: e.path)),
            warnings=tuple(sorted(dict.fromkeys(self.warnings), key=lambda w: w.path)),
            pending=tuple(sorted(self.deferred)),
        )


def _row(source: SourceFile, outcome: Parsed | Skipped, item_id: str | None) -> StoredFile:
    """The file row for a file read without error (``item_id`` None: not an item)."""
    return StoredFile(
        path=source.path,
        size=source.size,
        mtime_ns=source.mtime_ns,
        file_hash=outcome.digest,
        item_id=item_id,
        first_seen=outcome.times.first_seen,
        changed_at=outcome.times.changed_at,
    )
