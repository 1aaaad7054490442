"""A scan's decisions before any file is read; reads no file, no store and no clock.

Owns which found files a scan reads, defers (still settling) or counts as
unchanged, which stored files are gone, which errors carry over, who holds
each id when the scan begins (``feedsvc.claims``) and the order the files
are read in, and the scope of a scan after file events (``scope_for``,
``plan_scoped``: docs/operations.md, "Scoped scans"). Each is a pure
function of what discovery found, what the store knows and the values the
executor (``pipeline.scan``) passes in; what a file turned out to hold is
``ledger.py``'s business.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from feedsvc.claims import Claims
from feedsvc.dates import epoch_ns, first_seen
from feedsvc.discover import Discovery  # the value only: nothing here walks a folder
from feedsvc.types import FileError, FileState, FileWarning, SourceFile, StoredFile

# A modification time this far past the scan's start is clock skew, not a write
# during the scan (docs/operations.md, "Settled files").
_SKEW_NS = 300 * 10**9


@dataclass(frozen=True, slots=True)
class Conditions:
    """What a scan is planned under: its moment (taken before the folder is listed),
    ``content.settle_seconds``, and whether every file is normalised again (the
    site settings changed since the stored items were made)."""

    now: datetime
    settle_seconds: int = 0
    renormalise: bool = False


@dataclass(frozen=True, slots=True)
class ScanPlan:
    """What a scan knows before reading, and the files it reads.

    ``read``: new and changed files that settled, in discovery order
    (``read_order`` sorts them once their stored rows are known).
    ``claiming``: unchanged failing files whose row names an id, path -> (id,
    error): each is a failing holder or a refused claimant, told apart once
    the rest is read (``Ledger.judge_claiming``). ``claimants``: every found
    file whose row is failing and names an id; it is read again when the id
    it waits for opens. ``failing``: what discovery could see but not accept
    (path -> reason).
    """

    read: tuple[SourceFile, ...]
    deferred: tuple[str, ...]  # files still being written: read by a later scan
    unchanged: int
    skipped: int  # documents that are not items, as last time
    errors: tuple[FileError, ...]  # of unchanged failing files, carried over
    claiming: Mapping[str, tuple[str, str]]
    claimants: Mapping[str, SourceFile]
    gone: tuple[str, ...]  # stored files not found any more, sorted
    failing: Mapping[str, str]

    @property
    def idle(self) -> bool:
        """Nothing to read, nothing gone, no claim to judge: no id can change hands."""
        return not (self.read or self.gone or self.claiming)


class _Settling:
    """Which files were modified too recently to be read (``content.settle_seconds``).

    Decided from the scan's ``now`` and the file's own modification time, so
    it needs no clock and no second look at the folder; a file changing while
    it is read is caught when it is read (``outcome.Changing``). A file
    stamped after ``now`` was written while this scan ran (``now`` is taken
    before the folder is listed), unless it is stamped further ahead than any
    scan lasts: that is clock skew, which the time cannot judge, and it is
    left to the second check.
    """

    __slots__ = ("_now_ns", "_settle_ns")

    def __init__(self, now: datetime, settle_seconds: int) -> None:
        self._now_ns = epoch_ns(now)
        self._settle_ns = settle_seconds * 10**9

    def recent(self, source: SourceFile) -> bool:
        if not self._settle_ns:
            return False
        return -_SKEW_NS < self._now_ns - source.mtime_ns < self._settle_ns


def plan(found: Discovery, known: Mapping[str, FileState], conditions: Conditions) -> ScanPlan:
    """What this scan does with each file of ``found``, given the stored fingerprints ``known``.

    One pass over the found files: a rescan of 50,000 unchanged files is this
    loop and little else, so it stays flat (no call per file).
    """
    recent = _Settling(conditions.now, conditions.settle_seconds).recent
    renormalise = conditions.renormalise
    read: list[SourceFile] = []
    deferred: list[str] = []
    errors: list[FileError] = []
    claiming: dict[str, tuple[str, str]] = {}
    claimants: dict[str, SourceFile] = {}
    unchanged = skipped = 0
    stored = 0  # found files the store has a row for
    for source in found.files:
        prev = known.get(source.path)
        if prev is None:
            if recent(source):
                deferred.append(source.path)
            else:
                read.append(source)
            continue
        stored += 1
        same = prev.size == source.size and prev.mtime_ns == source.mtime_ns
        if prev.error and prev.item_id is not None:
            # A failing holder, or a refused claimant: told apart after reading.
            claimants[source.path] = source
            if same and not renormalise:
                claiming[source.path] = (prev.item_id, prev.error)
                continue
        elif same and not renormalise:
            if prev.error:
                unchanged += 1
                errors.append(FileError(source.path, prev.error))
            elif prev.item_id is None:
                skipped += 1  # a document that is not an item, as last time
            else:
                unchanged += 1
            continue
        if not same and recent(source):
            deferred.append(source.path)
            continue
        read.append(source)
    gone: tuple[str, ...] = ()
    if stored < len(known):  # some stored file was not found (else none is gone)
        present = {source.path for source in found.files}
        gone = tuple(sorted(path for path in known if path not in present))
    return ScanPlan(
        read=tuple(read),
        deferred=tuple(deferred),
        unchanged=unchanged,
        skipped=skipped,
        errors=tuple(errors),
        claiming=claiming,
        claimants=claimants,
        gone=gone,
        failing={error.path: error.error for error in found.errors},
    )


@dataclass(frozen=True, slots=True)
class StoredClaims:
    """The ids the stored rows name, before the store says which failing row holds its id.

    ``holders``: id -> the file whose row names it without an error.
    ``failing``: path -> id, for each failing row that names one: it holds the
    id if the stored item came from it, else it was refused and waits.
    """

    holders: Mapping[str, str]
    failing: Mapping[str, str]

    def failing_ids(self) -> set[str]:
        return set(self.failing.values())


@dataclass(frozen=True, slots=True)
class Holdings:
    """Who holds each id when the scan begins (id -> path), and who waits (id -> paths)."""

    holders: Mapping[str, str]
    waiting: Mapping[str, tuple[str, ...]]


NO_HOLDINGS = Holdings({}, {})


def stored_claims(known: Mapping[str, FileState]) -> StoredClaims:
    """The ids named by the stored rows ``known`` (one pass over them)."""
    holders: dict[str, str] = {}
    failing: dict[str, str] = {}
    for path, state in known.items():
        if state.item_id is None:
            continue
        if state.error:
            failing[path] = state.item_id
        else:
            holders[state.item_id] = path
    return StoredClaims(holders, failing)


def holdings(claims: StoredClaims, sources: Mapping[str, str]) -> Holdings:
    """Holders and waiting files; ``sources``: the file each item of ``claims.failing_ids()``
    came from, as the store says (``Store.item_sources``)."""
    if not claims.failing:
        return Holdings(claims.holders, {})
    holders = dict(claims.holders)
    waiting: dict[str, list[str]] = {}
    for path, item_id in sorted(claims.failing.items()):
        if sources.get(item_id) == path:
            holders[item_id] = path  # a failing holder: its last good item is stored
        else:
            waiting.setdefault(item_id, []).append(path)
    return Holdings(holders, {item_id: tuple(paths) for item_id, paths in waiting.items()})


def failing_reason(path: str, failing: Mapping[str, str]) -> str | None:
    """Why a stored path is not readable now: its own error or its folder's."""
    if path in failing:
        return failing[path]
    parts = path.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        reason = failing.get("/".join(parts[:depth]))
        if reason is not None:
            return reason
    return None


def rows_wanted(scan: ScanPlan, known: Mapping[str, FileState], held: Holdings) -> list[str]:
    """The files whose full stored rows (with dates) the scan needs.

    The read ones, the gone ones discovery refused (their error is recorded on
    their row) and the gone holders (a moved file takes over their dates).
    """
    wanted = [source.path for source in scan.read if source.path in known]
    if scan.gone:
        holder_paths = set(held.holders.values())
        wanted += [
            path
            for path in scan.gone
            if path in holder_paths or failing_reason(path, scan.failing) is not None
        ]
    return wanted


def start_claims(scan: ScanPlan, held: Holdings, rows: Mapping[str, StoredFile]) -> Claims:
    """The claims as the scan begins: the ids of gone holders are open (claims.py)."""
    gone = (
        rows[path]
        for path in scan.gone
        if path in rows and failing_reason(path, scan.failing) is None
    )
    return Claims(held.holders, gone, held.waiting)


def read_order(
    scan: ScanPlan, rows: Mapping[str, StoredFile], now: datetime
) -> tuple[SourceFile, ...]:
    """The files to read, the one seen first first: it claims an id first (claims.py)."""

    def seen(source: SourceFile) -> tuple[datetime, str]:
        row = rows.get(source.path)
        at = row.first_seen if row is not None else first_seen(source.mtime_ns, now)
        return at, source.path

    return tuple(sorted(scan.read, key=seen))


@dataclass(frozen=True, slots=True)
class Departures:
    """What becomes of the stored files not found: ``removed`` leave with their items;
    ``kept`` are rows of files discovery refused now (over the size cap, a symbolic
    link, an unreadable folder), which keep their last good items and record why."""

    removed: tuple[str, ...]
    kept: tuple[StoredFile, ...]
    errors: tuple[FileError, ...]  # every file discovery refused


def departures(scan: ScanPlan, rows: Mapping[str, StoredFile]) -> Departures:
    removed: list[str] = []
    kept: list[StoredFile] = []
    for path in scan.gone:
        reason = failing_reason(path, scan.failing)
        if reason is None:
            removed.append(path)
        elif rows[path].error != reason:
            kept.append(replace(rows[path], error=reason))
    errors = tuple(FileError(path, reason) for path, reason in scan.failing.items())
    return Departures(tuple(removed), tuple(kept), errors)


def carried_warnings(
    last: Iterable[FileWarning], known: Mapping[str, FileState], scan: ScanPlan
) -> list[FileWarning]:
    """The last report's warnings about files this scan does not read again.

    Warnings are not kept per file: those of files not read again carry over
    from the last report, so every report lists them all.
    """
    read = {source.path for source in scan.read}
    gone = set(scan.gone)
    return [w for w in last if w.path in known and w.path not in read and w.path not in gone]


# --- scoped scans (docs/operations.md, "Scoped scans") -----------------------------------------

# More named paths than this in one quiet window, or more stored files at or under
# them, and the scan after file events walks the whole root: past this size a
# scoped scan saves little and a full one is the simpler truth.
MAX_SCOPED_PATHS = 256
MAX_SCOPED_STORED = 2000


@dataclass(frozen=True, slots=True)
class Census:
    """What the last scan of this process found that the store does not keep:
    the resources' paths and those of the entries skipped by name (hidden,
    ``content.ignore``)."""

    resources: frozenset[str]
    ignored: frozenset[str]


@dataclass(frozen=True, slots=True)
class Scope:
    """A scan limited to the paths file events named; made by ``scope_for`` only.

    ``paths``: the named paths (relative, as ``SourceFile.path`` shows them),
    none inside another. ``inside``: the stored rows at or under them, which
    the scan looks at again. Every other stored row is taken as unchanged
    without a look: ``kept`` are those ``plan`` must still see (failing rows,
    which carry their errors and claims, and documents that are not items);
    ``plain`` counts the rest (an item, no error).
    """

    paths: tuple[str, ...]
    census: Census
    inside: Mapping[str, FileState]
    kept: Mapping[str, FileState]
    plain: int

    def covers(self, path: str) -> bool:
        """Whether ``path`` is a named path or lies under one."""
        return any(path == named or path.startswith(named + "/") for named in self.paths)


def _outside_root(path: str) -> bool:
    parts = path.split("/")
    return any(part in ("", ".", "..") for part in parts)


def scope_for(
    paths: Collection[str] | None,
    census: Census | None,
    known: Mapping[str, FileState],
    *,
    renormalise: bool,
) -> Scope | None:
    """The scope of a scan after file events, or None for a full scan.

    ``paths``: the relative paths the events named (None: they could not name
    them: the queue overflowed, the root itself changed). A full scan also when
    this process has no census yet (its first scan), when every file must be
    normalised again, when a path is not plainly inside the root, and when the
    paths or the stored files under them are too many (``MAX_SCOPED_*``).
    """
    if paths is None or census is None or renormalise or len(paths) > MAX_SCOPED_PATHS:
        return None
    if any(_outside_root(path) for path in paths):
        return None
    named: list[str] = []
    for path in sorted(paths):  # a parent sorts before its children
        if not named or not path.startswith(named[-1] + "/"):
            named.append(path)
    exact = frozenset(named)
    prefixes = tuple(path + "/" for path in named)
    inside: dict[str, FileState] = {}
    kept: dict[str, FileState] = {}
    plain = 0
    for path, state in known.items():
        if path in exact or path.startswith(prefixes):
            inside[path] = state
        elif state.error is None and state.item_id is not None:
            plain += 1
        else:
            kept[path] = state
    if len(inside) > MAX_SCOPED_STORED:
        return None
    return Scope(tuple(named), census, inside, kept, plain)


def plan_scoped(
    found: Discovery, scope: Scope, conditions: Conditions, last_errors: Iterable[FileError]
) -> tuple[ScanPlan, Discovery]:
    """``plan`` for a scoped scan: ``found`` holds what discovery saw at the named paths.

    Returns the plan and the whole root as this scan sees it (the report's
    counts): the files found in scope, the stored files out of scope as they
    were, the resources of the census out of scope plus those found, and the
    errors of the last report about out-of-scope paths the store keeps no row
    for (discovery refused them: links, oversized files, unreadable folders).
    ``plain`` out-of-scope items are counted unchanged, not listed.
    """
    kept = scope.kept
    outside = tuple(SourceFile(path, state.size, state.mtime_ns) for path, state in kept.items())
    carried = tuple(
        error
        for error in last_errors
        if error.path not in kept
        and error.path not in scope.inside
        and not scope.covers(error.path)
    )
    resources = [path for path in scope.census.resources if not scope.covers(path)]
    ignored = {path for path in scope.census.ignored if not scope.covers(path)}
    ignored.update(found.ignored_paths)
    whole = Discovery(
        files=found.files + outside,
        errors=tuple(sorted(found.errors + carried, key=lambda e: e.path)),
        resources=tuple(sorted([*resources, *found.resources])),
        ignored=len(ignored),
        ignored_paths=tuple(sorted(ignored)),
    )
    todo = plan(whole, {**scope.inside, **kept}, conditions)
    return replace(todo, unchanged=todo.unchanged + scope.plain), whole
