"""An item's published and updated dates: the chain of docs/dates.md, with where each came from.

Owns the order of the date sources (docs/dates.md) and what happens to a
value that cannot be read: it is skipped with a warning naming the key and
the value, and the next source is used; it never drops the item. The times
the service keeps itself (first seen, last real change) are passed in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from feedsvc.errors import SourceError
from feedsvc.normalise.fields import Meta, localise
from feedsvc.types import RawDocument, pure_path

PUBLISHED_KEYS = ("date", "published", "pubDate", "publishDate")
UPDATED_KEYS = ("updated", "lastmod", "modified")
# Hugo's keys are case-insensitive: sites write both spellings.
PUBLISH_DATE_KEYS = ("publishDate", "publishdate")
EXPIRY_DATE_KEYS = ("expiryDate", "expirydate")

# Where a date came from, as ``feedsvc check`` shows it. The last two are
# guesses from file times, never something the author wrote.
FROM_FILE_NAME = "file name"
FROM_FORMAT = "transcript header"
FROM_FIRST_SEEN = "first-seen file time"
FROM_LAST_CHANGE = "file time of the last content change"
FROM_PUBLISHED = "published"
GUESSED = frozenset({FROM_FIRST_SEEN, FROM_LAST_CHANGE})

_FILE_NAME_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


@dataclass(frozen=True, slots=True)
class ItemDates:
    """Published and updated, each with its source, and the values that were skipped."""

    published: datetime
    published_from: str
    updated: datetime
    updated_from: str
    warnings: tuple[str, ...] = ()
    publish_date: datetime | None = None
    expiry_date: datetime | None = None

    @property
    def published_guessed(self) -> bool:
        return self.published_from in GUESSED

    @property
    def updated_guessed(self) -> bool:
        if self.updated_from == FROM_PUBLISHED:
            return self.published_guessed
        return self.updated_from in GUESSED


def item_dates(
    meta: Meta,
    raw: RawDocument,
    zone: ZoneInfo,
    *,
    first_seen: datetime,
    changed_at: datetime | None,
) -> ItemDates:
    """The dates of one document (docs/dates.md, published and updated).

    ``changed_at``: when the service saw the content really change, or None
    if it never did; then ``updated`` equals ``published`` (a checkout's file
    times never become ``updated``).
    """
    warnings: list[str] = []
    skipped: list[str] = []
    published, published_from = _declared(meta, PUBLISHED_KEYS, zone, skipped, skip_flags=True)
    if published is None and raw.published is not None:
        published, published_from = localise(raw.published, zone), FROM_FORMAT
    if published is None:
        published, published_from = _file_name_date(raw.path, zone)
    if published is None:
        published, published_from = localise(first_seen, zone), FROM_FIRST_SEEN
    warnings += (f"{reason}; published falls back to the {published_from}" for reason in skipped)

    skipped = []
    updated, updated_from = _declared(meta, UPDATED_KEYS, zone, skipped)
    if updated is None and raw.updated is not None:
        updated, updated_from = localise(raw.updated, zone), FROM_FORMAT
    if updated is None and changed_at is not None:
        updated, updated_from = localise(changed_at, zone), FROM_LAST_CHANGE
    if updated is None or updated < published:
        # docs/dates.md: updated is never before published.
        updated, updated_from = published, FROM_PUBLISHED
    warnings += (f"{reason}; updated falls back to the {updated_from}" for reason in skipped)

    skipped = []
    publish_date, _ = _declared(meta, PUBLISH_DATE_KEYS, zone, skipped)
    expiry_date, _ = _declared(meta, EXPIRY_DATE_KEYS, zone, skipped)
    warnings += (f"{reason}; it is ignored" for reason in skipped)
    return ItemDates(
        published,
        published_from,
        updated,
        updated_from,
        tuple(warnings),
        publish_date=publish_date,
        expiry_date=expiry_date,
    )


def _declared(
    meta: Meta,
    keys: tuple[str, ...],
    zone: ZoneInfo,
    skipped: list[str],
    *,
    skip_flags: bool = False,
) -> tuple[datetime | None, str]:
    """The first of ``keys`` that holds a readable date; unreadable ones go to ``skipped``."""
    for key in keys:
        try:
            value = meta.date(key, zone=zone, skip_flags=skip_flags)
        except SourceError as exc:
            skipped.append(exc.reason)
            continue
        if value is not None:
            return value, f"front matter {key!r}"
    return None, ""


def _file_name_date(path: str, zone: ZoneInfo) -> tuple[datetime | None, str]:
    """A Jekyll-style ``YYYY-MM-DD`` in the file name, as local midnight."""
    for match in _FILE_NAME_DATE.finditer(pure_path(path).name):
        try:
            day = date(*(int(part) for part in match.groups()))
        except ValueError:
            continue  # 2024-13-45 in a file name is not a date: look further
        return localise(datetime(day.year, day.month, day.day), zone), FROM_FILE_NAME
    return None, ""
