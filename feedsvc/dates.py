"""The service's own times: a file's first-seen and change times, and when an item is in the feeds.

A file's modification time is the last source of an item's published date
(docs/dates.md). It is turned into the stored "first seen" time here and
nowhere else, so a scan, a failing file's record and ``feedsvc check`` can
never disagree on it; so is the time of a file's last real content change,
and a moment's nanoseconds to compare with a modification time. The
listing window of an item (scheduled, expiring) is decided here too, for
the store and the status page alike. Owns no front-matter dates
(``normalise/dates.py``). Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from feedsvc.types import Item, StoredFile

# The one fixed date for "no date at all": a feed whose items carry none is
# dated here, so its bytes stay the same from one render to the next.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def newest_updated(items: Iterable[Item]) -> datetime:
    """The newest ``item.updated`` of ``items``, else ``EPOCH``: a feed's own date.

    Derived from the data only, so a feed's bytes, ETag and Last-Modified move
    only with its content. Instants are compared; on a tie the greater id wins,
    so the offset the winner carries does not depend on the items' order.
    """
    newest = max(items, key=lambda item: (item.updated, item.id), default=None)
    return EPOCH if newest is None else newest.updated


def utc_now() -> datetime:
    """The wall clock, read only by the top of the program (CLI, watcher, web).

    Every stage below them takes ``now`` as an argument (docs/architecture.md).
    """
    return datetime.now(UTC)


def first_seen(mtime_ns: int, now: datetime) -> datetime:
    """The first-seen time of a file with this modification time, seen at ``now``.

    A file stamped in the future (clock skew, a restored backup, an archive
    unpacked with its own times) must not date an item in the future: the
    time is clamped to ``now``, the moment the file was seen. Only a date the
    author wrote may schedule an item for later.
    """
    return min(datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC), now)


def epoch_ns(moment: datetime) -> int:
    """``moment`` in nanoseconds since the epoch: comparable with a file's ``mtime_ns``."""
    since = moment - EPOCH
    return (since.days * 86_400 + since.seconds) * 10**9 + since.microseconds * 1000


@dataclass(frozen=True, slots=True)
class FileTimes:
    """The two times kept with a file (docs/dates.md): when it was first seen, and when
    its content last really changed (None: never)."""

    first_seen: datetime
    changed_at: datetime | None = None


def file_times(mtime_ns: int, known: StoredFile | None, digest: str, now: datetime) -> FileTimes:
    """The times of a file read at ``now`` whose bytes hash to ``digest``.

    ``known``: its stored row, or the row of the file it is the moved copy of
    (``feedsvc.claims``); None for a file never seen. A known file keeps its
    first-seen time. Only new bytes in a file that already made an item are a
    change; a file's first good version is its first publication. A change is
    dated like a first sighting, and never before the previous change.
    """
    if known is None:
        return FileTimes(first_seen(mtime_ns, now))
    changed_at = known.changed_at
    if known.item_id is not None and known.file_hash != digest:
        changed_at = max(first_seen(mtime_ns, now), known.changed_at or known.first_seen)
    return FileTimes(known.first_seen, changed_at)


def shows_at(item: Item) -> datetime:
    """When ``item`` enters the feeds: its published date, or a later publishDate."""
    if item.publish_date is not None and item.publish_date > item.published:
        return item.publish_date
    return item.published


def is_listed(item: Item, now: datetime) -> bool:
    """Whether ``item`` is in the feeds and pages at ``now`` (docs/dates.md)."""
    if item.draft or shows_at(item) > now:
        return False
    return item.expiry_date is None or item.expiry_date > now


def is_timed(item: Item, now: datetime) -> bool:
    """Whether the clock alone will change ``item``'s listing after ``now``.

    A non-draft item with a publish time still ahead, or with an expiry time.
    """
    return not item.draft and (shows_at(item) > now or item.expiry_date is not None)
