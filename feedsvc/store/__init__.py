"""The store: what feedsvc keeps between scans, behind one narrow interface.

Owns persistence only. It does not parse, normalise or render; it does not
know where content comes from. SQL never leaves this package. Open a store
with ``open_store(url)``; SQLite and PostgreSQL differ only inside ``backend.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from feedsvc.types import (
    FeedInfo,
    FeedKey,
    FileState,
    Item,
    ItemCounts,
    ScanReport,
    ScheduledItem,
    StoredFile,
)

if TYPE_CHECKING:
    from feedsvc.store.hub import HubStore


@dataclass(frozen=True, slots=True)
class ScanChanges:
    """Everything one scan asks the store to change, applied atomically.

    ``files``: fingerprint rows to insert or replace (new, changed, touched or
    newly failing files). ``items``: items to insert or replace, keyed by id.
    ``removed_paths``: files that are gone; their file rows and every item whose
    ``source_path`` is one of them leave. ``removed_items``: further item ids to
    delete (a file whose front-matter id changed).
    """

    files: tuple[StoredFile, ...] = ()
    items: tuple[Item, ...] = ()
    removed_paths: tuple[str, ...] = ()
    removed_items: tuple[str, ...] = ()
    settings_digest: str | None = None

    @property
    def empty(self) -> bool:
        return not (
            self.files
            or self.items
            or self.removed_paths
            or self.removed_items
            or self.settings_digest is not None
        )


@dataclass(frozen=True, slots=True)
class ScanState:
    """The last finished scan as every process sees it (for /api/status)."""

    report: ScanReport
    finished_at: datetime
    scans_total: int = 0  # every scan this store has recorded, for /metrics


@dataclass(frozen=True, slots=True)
class ScanFailure:
    """The last scan that failed as a whole (content folder gone, store refused).

    ``reason`` is safe to show anyone: no absolute path, URL or password.
    Cleared by the next scan that finishes (``record_scan``).
    """

    reason: str
    failed_at: datetime


@dataclass(frozen=True, slots=True)
class FileEventsState:
    """Whether the watcher sees file-system events, for every process's /api/status.

    ``reason`` (when not ``available``) is safe to show anyone: no absolute path.
    """

    available: bool
    reason: str | None
    since: datetime


class ScanWriter(Protocol):
    """One scan's writes, streamed in chunks into ONE transaction.

    A scan of 50,000 new files cannot hold every item in memory until the
    end, so it hands them over in chunks (``stage``). The transaction opens
    with the first chunk that writes anything and commits only in ``commit``:
    readers keep seeing the previous scan until then, and a kill at any
    moment (or an exception leaving the ``Store.scan_writer`` block) rolls
    every staged chunk back. Nothing staged and nothing to commit means
    nothing written, not even a lock taken.
    """

    def stage(self, files: Sequence[StoredFile], items: Sequence[Item]) -> None:
        """Write these file rows and (changed) items inside the open transaction."""
        ...

    def commit(self, changes: ScanChanges) -> int:
        """Apply the rest of the scan (deletions, last rows), commit; return the generation."""
        ...


class Store(Protocol):
    """Contract of every store.

    - ``apply`` runs in ONE transaction: after a crash or kill the store holds
      either all of a scan's changes or none. An empty ``ScanChanges`` writes
      nothing at all. The generation moves only when an item row (or the set
      of items) changes, so feeds and their ETags move only with content.
    - Reads never see a half-applied scan.
    - ``scan_lock`` excludes other scans across threads, processes and (for
      PostgreSQL) hosts; a killed holder never leaves a stale lock.
    """

    def files(self, paths: Collection[str] | None = None) -> Mapping[str, StoredFile]:
        """Every known source file by relative path (only ``paths``, if given)."""
        ...

    def file_states(self) -> Mapping[str, FileState]:
        """Every known source file's fingerprint by path: the cheap read of a rescan."""
        ...

    def item_sources(self, item_ids: Collection[str]) -> Mapping[str, str]:
        """The ``source_path`` of those of ``item_ids`` that exist: which file holds each."""
        ...

    def item_hashes(self, item_ids: Collection[str]) -> Mapping[str, str]:
        """The stored ``content_hash`` of those of ``item_ids`` that exist."""
        ...

    def settings_digest(self) -> str | None:
        """Digest of the site settings the stored items were normalised with."""
        ...

    def apply(self, changes: ScanChanges, now: datetime | None = None) -> int:
        """Apply a scan's changes atomically; return the (possibly new) generation.

        ``now``: the moment items are listed or kept out at (scheduled, expired:
        ``feedsvc.dates.is_listed``); None lists every item that is not a draft.
        """
        ...

    def scan_writer(self, now: datetime | None = None) -> AbstractContextManager[ScanWriter]:
        """A writer for one scan's chunks; leaving the block without ``commit`` rolls back.

        ``now`` as in ``apply``; the commit also releases what fell due by then.
        """
        ...

    def release(self, now: datetime) -> int:
        """List the scheduled items whose time came and unlist the expired ones.

        Returns the generation, moved only if an item entered or left the feeds,
        so every process's feeds follow (docs/dates.md). Idempotent.
        """
        ...

    def next_change(self, now: datetime) -> datetime | None:
        """The first moment after ``now`` when an item enters or leaves the feeds."""
        ...

    def scheduled(self) -> tuple[ScheduledItem, ...]:
        """The items the clock still lists (or unlists), soonest first."""
        ...

    def item_counts(self, now: datetime) -> ItemCounts:
        """Items by what a reader sees of them at ``now``: listed, drafts, scheduled, expired."""
        ...

    def generation(self) -> int:
        """A number that moves whenever the items change; cheap to call."""
        ...

    def item(self, item_id: str, *, listed: bool = False) -> Item | None:
        """One item by id (drafts and scheduled ones too, unless ``listed``), or None."""
        ...

    def feeds(self) -> tuple[FeedInfo, ...]:
        """Every grid cell with at least one non-draft item, sorted by key.

        Includes ``all/all``, ``all/{slug}``, ``{lang}/all`` and
        ``{lang}/{slug}``; ``category_name`` is the display name for slugs.
        """
        ...

    def items_for(self, key: FeedKey, limit: int) -> tuple[Item, ...]:
        """Non-draft items of one feed (any facet), newest published first, then by id."""
        ...

    def term_feeds(self, facet: str) -> tuple[FeedInfo, ...]:
        """Every tag (``facet="tag"``) or author feed with a non-draft item.

        ``all/{slug}`` and ``{lang}/{slug}``, sorted by slug, ``all`` first;
        ``category_name`` is the most common display name of the slug.
        """
        ...

    def known_feed(self, key: FeedKey) -> FeedInfo | None:
        """A feed that ever had a non-draft item (any facet), with the display
        name it first had and ``item_count`` 0; None for a feed that never existed. Feeds are
        remembered by every write of their items and never forgotten."""
        ...

    def known_feeds(self) -> tuple[FeedKey, ...]:
        """Every feed that ever had a non-draft item (see ``known_feed``), sorted."""
        ...

    def record_scan(self, state: ScanState) -> None:
        """Remember the last finished scan (one row, overwritten); clears the failure."""
        ...

    def last_scan(self) -> ScanState | None: ...

    def record_failure(self, failure: ScanFailure) -> None:
        """Remember that a scan failed as a whole, until the next one finishes."""
        ...

    def last_failure(self) -> ScanFailure | None:
        """The failure recorded since the last finished scan, if any."""
        ...

    def record_file_events(self, state: FileEventsState) -> None:
        """Remember whether the watcher's file events work (one row, overwritten)."""
        ...

    def file_events(self) -> FileEventsState | None:
        """What the watcher last recorded about file events, if it ever did."""
        ...

    def record_health(self, role: str, text: str) -> None:
        """Keep the latest health report of one role (``feedsvc.health``)."""
        ...

    def health(self, role: str) -> str | None:
        """The latest health report of one role, as recorded."""
        ...

    def scan_lock(self, wait: bool = True) -> AbstractContextManager[bool]:
        """Hold the global scan lock; yields False if ``wait`` is False and it is taken."""
        ...

    def hub(self) -> HubStore:
        """The WebSub hub's subscriptions, queue and counters (``store/hub.py``)."""
        ...

    def reopen_if_replaced(self, *, create: bool) -> str | None:
        """Notice a store file deleted or replaced underneath; say what was done, or None."""
        ...

    def ping(self) -> None:
        """Raise ``StoreError`` unless the store answers."""
        ...

    def close(self) -> None: ...


def open_store(url: str) -> Store:
    """Open (and create or migrate) the store at ``url``."""
    # Imported here: sql.py imports this module (ScanChanges, ScanState).
    from feedsvc.store.sql import SqlStore

    return SqlStore(url)


__all__ = [
    "FileEventsState",
    "ScanChanges",
    "ScanFailure",
    "ScanState",
    "ScanWriter",
    "Store",
    "open_store",
]
