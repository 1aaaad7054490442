"""The service's own times: a file's first-seen time, and when an item is in the feeds.

A file's modification time is the last source of an item's published date
(docs/dates.md). It is turned into the stored "first seen" time here and
nowhere else, so a scan, a failing file's record and ``feedsvc check`` can
never disagree on it. The listing window of an item (scheduled, expiring) is
decided here too, for the store and the status page alike. Owns no
front-matter dates (``normalise/dates.py``). Standard library only.
"""

from __future__ import annotations

from datetime import UTC, datetime

from feedsvc.types import Item

# The one fixed date for "no date at all": a feed whose items carry none is
# dated here, so its bytes stay the same from one render to the next.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
