"""The service's own times for a file: when it was first seen; owns no front-matter dates.

A file's modification time is the last source of an item's published date
(docs/dates.md). It is turned into the stored "first seen" time here and
nowhere else, so a scan, a failing file's record and ``feedsvc check`` can
never disagree on it. Standard library only: every layer may import it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def first_seen(mtime_ns: int, now: datetime) -> datetime:
    """The first-seen time of a file with this modification time, seen at ``now``.

    A file stamped in the future (clock skew, a restored backup, an archive
    unpacked with its own times) must not date an item in the future: the
    time is clamped to ``now``, the moment the file was seen. Only a date the
    author wrote may schedule an item for later.
    """
    return min(datetime.fromtimestamp(mtime_ns / 1e9, tz=UTC), now)
