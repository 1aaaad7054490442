"""The store's interfaces: what feedsvc keeps between scans; owns no SQL (that is ``sql.py``).

Owns persistence only. It does not parse, normalise or render; it does not
know where content comes from. SQL never leaves this package. Open a store
with ``open_store(url)``; SQLite and PostgreSQL differ only inside ``backend.py``.

Two readers, two interfaces: the web layer reads through ``ReadStore`` (feeds,
items, the last scan, status), the scanner and the watcher work through
``ScanStore`` (file fingerprints, the scan's one transaction, the clock's
releases, every status write). ``Store`` is both, plus the store's lifecycle.
Submodules never import this module: it imports them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from feedsvc.types import (
    FeedInfo,
    FeedKey,
    FileEventsState,
    FileState,
    Item,
    ItemCounts,
    ScanChanges,
    ScanFailure,
    ScanState,
    ScheduledItem,
    StoredFile,
)

if TYPE_CHECKING:
    from feedsvc.store.hub import HubStore


class ScanWriter(Protocol):
    """One scan's writes, streamed in chunks into ONE transaction.

    A scan of 50,000 new files cannot hold every item in memory until the
    end, so it hands them over in chunks (``stage``). The transaction opens
    with the first chunk that writes anything and commits only in ``commit``:
    readers keep seeing the previous scan until then, and a kill at any
    moment (or an exception leaving the ``ScanStore.scan_writer`` block) rolls
    every staged chunk back. Nothing staged and nothing to commit means
    nothing written, not even a lock taken.
    """

    def stage(self, files: Sequence[StoredFile], items: Sequence[Item]) -> None:
        """Write these file rows and (changed) items inside the open transaction."""
        ...

    def commit(self, changes: ScanChanges) -> int:
        """Apply the rest of the scan (deletions, last rows), commit; return the generation.

        The whole scan lands or none of it: after a crash or kill the store
        holds either all of a scan's changes or none. An empty ``ScanChanges``
        with nothing staged writes nothing at all. The generation moves only
        when an item row (or the set of items) changes, so feeds and their
        ETags move only with content.
        """
        ...


class ReadStore(Protocol):
    """What the web layer reads: feeds, items, and the status every process shares.

    Contract: every method is a read and never writes. Reads never see a
    half-applied scan: a scan's changes appear all at once when it commits.
    Methods that fold several queries (``feeds``) read one snapshot, so their
    numbers agree with each other. Database errors arrive as ``StoreError``
    with a message safe to show (no URL, no password).
    """

    def generation(self) -> int:
        """A number that moves whenever the items change; cheap to call."""
        ...

    def item(self, item_id: str, *, listed: bool = False) -> Item | None:
        """One item by id (drafts and scheduled ones too, unless ``listed``), or None."""
        ...

    def items_for(self, key: FeedKey, limit: int) -> tuple[Item, ...]:
        """Non-draft items of one feed (any facet), newest published first, then by id."""
        ...

    def feeds(self) -> tuple[FeedInfo, ...]:
        """Every grid cell with at least one non-draft item, sorted by key.

        Includes ``all/all``, ``all/{slug}``, ``{lang}/all`` and
        ``{lang}/{slug}``; ``category_name`` is the display name for slugs.
        """
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

    def scheduled(self) -> tuple[ScheduledItem, ...]:
        """The items the clock still lists (or unlists), soonest first."""
        ...

    def last_scan(self) -> ScanState | None:
        """The last finished scan, as recorded by ``ScanStore.record_scan``."""
        ...

    def last_failure(self) -> ScanFailure | None:
        """The failure recorded since the last finished scan, if any."""
        ...

    def file_events(self) -> FileEventsState | None:
        """What the watcher last recorded about file events, if it ever did."""
        ...

    def health(self, role: str) -> str | None:
        """The latest health report of one role, as recorded."""
        ...


class ScanStore(Protocol):
    """What the scanner and the watcher need: file fingerprints, the scan's writes, the clock.

    Contract: every change of items goes through ``scan_writer`` (or the
    clock's ``release``) and lands in ONE transaction; the generation moves
    only when items enter, leave or change, never for file rows or settings
    alone. ``scan_lock`` excludes other scans across threads, processes and
    (for PostgreSQL) hosts; a killed holder never leaves a stale lock.
    The ``record_*`` methods each overwrite one row that every process reads
    back through ``ReadStore``.
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

    def last_scan(self) -> ScanState | None:
        """The last finished scan: a scan carries over its warnings about files it
        does not read again (the same read ``ReadStore`` offers)."""
        ...

    def scan_writer(self, now: datetime | None = None) -> AbstractContextManager[ScanWriter]:
        """A writer for one scan's chunks; leaving the block without ``commit`` rolls back.

        ``now``: the moment items are listed or kept out at (scheduled, expired:
        ``feedsvc.dates.is_listed``); None lists every item that is not a draft.
        The commit also releases what fell due by then.
        """
        ...

    def scan_lock(self, wait: bool = True) -> AbstractContextManager[bool]:
        """Hold the global scan lock; yields False if ``wait`` is False and it is taken."""
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

    def item_counts(self, now: datetime) -> ItemCounts:
        """Items by what a reader sees of them at ``now``: listed, drafts, scheduled, expired."""
        ...

    def record_scan(self, state: ScanState) -> None:
        """Remember the last finished scan (one row, overwritten); clears the failure."""
        ...

    def record_failure(self, failure: ScanFailure) -> None:
        """Remember that a scan failed as a whole, until the next one finishes."""
        ...

    def record_file_events(self, state: FileEventsState) -> None:
        """Remember whether the watcher's file events work (one row, overwritten)."""
        ...

    def record_health(self, role: str, text: str) -> None:
        """Keep the latest health report of one role (``feedsvc.health``)."""
        ...


class Store(ReadStore, ScanStore, Protocol):
    """Both sides of the store, plus its lifecycle: what ``open_store`` returns."""

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
    # Imported here so that importing the interfaces does not load SQLAlchemy.
    from feedsvc.store.sql import SqlStore

    return SqlStore(url)


__all__ = [
    "FileEventsState",
    "ReadStore",
    "ScanChanges",
    "ScanFailure",
    "ScanState",
    "ScanStore",
    "ScanWriter",
    "Store",
    "open_store",
]
