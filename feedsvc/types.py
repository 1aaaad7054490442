"""Values handed between pipeline stages; owns no behaviour beyond tiny helpers.

Data flows one way and the names say where a value is in that flow:

    SourceFile (found on disk) -> RawDocument (parsed from a file)
        -> Item (normalised) -> StoredFile (what the store remembers per file)

Every value is immutable: frozen dataclasses, tuples, read-only mappings.
Only the standard library may be imported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import NamedTuple

EMPTY_META: Mapping[str, object] = MappingProxyType({})

# The feed grid `/feeds/{language}/{category}.{fmt}`: `all` in either place
# means "every language" / "every category" (docs/http.md, "The grid"). Every word a route
# gives a meaning in those places belongs here, and nothing else may be
# a language or a category slug that equals one of them.
ALL = "all"
GRID_WORDS = frozenset({ALL})


@lru_cache(maxsize=64)
def pure_path(path: str) -> PurePosixPath:
    """The ``PurePosixPath`` of a content-relative path, built once per path.

    Reading one file asks for its path's parts, stem, suffix or name about
    seven times over (the format, the id, the categories, the draft flag,
    the dates); each ``PurePosixPath`` costs a few microseconds to build.
    """
    return PurePosixPath(path)


class SourceFile(NamedTuple):
    """A regular file found under the content root, not yet read.

    ``path`` is the POSIX path relative to the content root, always valid
    UTF-8 text: bytes that are not UTF-8 in a file name are shown as
    ``\\xNN`` escapes, so the path can be stored, logged and bound in SQL.

    A named tuple rather than a frozen dataclass: discovery makes one per
    file on every rescan (50,000 of them), and a tuple is built several
    times faster; it is just as immutable.
    """

    path: str
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class RawDocument:
    """What a parser made of one file, before any site rule is applied.

    ``meta`` holds front matter exactly as written, and is empty for a file
    without front matter (a transcript, a plain file): every scalar is a ``str``
    (YAML 1.1 never gets to turn ``no`` into ``False`` or ``0123`` into 83),
    plus lists and mappings of the same; TOML front matter keeps TOML's own
    types (str, int, float, bool, datetime, date, list, dict). Normalisation
    coerces each field against its own schema.

    ``title``, ``category``, ``summary``, ``published`` and ``updated`` are
    what the *format itself* says (a transcript header, a plain file's first
    heading or line); front matter never fills them. Dates may be naive
    (local time in ``site.timezone``) or aware.

    ``body_html`` is the body rendered to HTML (from Markdown, HTML or text)
    but NOT sanitised.
    """

    path: str
    body_html: str
    meta: Mapping[str, object] = field(default_factory=lambda: EMPTY_META)
    title: str | None = None
    category: str | None = None
    summary: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    # What the file lost on the way in but did not stop it (bad UTF-8 bytes).
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Category:
    """A category as shown (``name``) and as used in URLs (``slug``)."""

    name: str
    slug: str


@dataclass(frozen=True, slots=True)
class Item:
    """One normalised entry, ready for every feed format (docs/item-fields.md).

    ``id`` is the stable identity (never derived from base URL, title, mtime
    or render time); ``guid`` is its permanent IRI as written into feeds.
    Dates are timezone-aware; ``updated >= published``.
    ``content_hash`` is a digest of every field above it, so "did this item
    change?" is one comparison.
    """

    id: str
    guid: str
    source_path: str
    url: str
    title: str
    summary: str
    content_html: str
    content_text: str
    language: str
    categories: tuple[Category, ...]
    tags: tuple[str, ...]
    image: str | None
    authors: tuple[str, ...]
    published: datetime
    updated: datetime
    draft: bool = False
    # Front matter publishDate / expiryDate (docs/dates.md): the item is in the
    # feeds from max(published, publish_date) until expiry_date.
    publish_date: datetime | None = None
    expiry_date: datetime | None = None
    content_hash: str = ""


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What the store remembers about one source file between scans.

    ``first_seen`` and ``changed_at`` are the stable dates of docs/dates.md: the
    file's first-seen time (``feedsvc.dates.first_seen``), and when its content
    last really changed, None while it never did (docs/dates.md). They never
    move unless the content does. ``error`` is the reason the latest read
    failed (the item keeps its last good version meanwhile).
    """

    path: str
    size: int
    mtime_ns: int
    file_hash: str
    item_id: str | None
    first_seen: datetime
    changed_at: datetime | None
    error: str | None = None


class FileState(NamedTuple):
    """The part of a ``StoredFile`` a rescan needs for every file: its fingerprint.

    Read for all files on every scan, so it carries no dates to parse; the
    full ``StoredFile`` is read only for the few files that changed.
    """

    size: int
    mtime_ns: int
    item_id: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that could not be understood, and why (docs/content-formats.md)."""

    path: str
    error: str


@dataclass(frozen=True, slots=True)
class ScheduledItem:
    """An item the clock brings into the feeds (``shows_at``) or takes out (``hides_at``)."""

    item_id: str
    source_path: str
    shows_at: datetime
    hides_at: datetime | None


@dataclass(frozen=True, slots=True)
class ItemCounts:
    """Items in the store by what a reader sees of them (docs/identity.md, the scan report).

    ``listed``: in the feeds now; ``drafts``: drafts; ``scheduled``: waiting for
    their publish time; ``expired``: past their expiry time.
    """

    listed: int = 0
    drafts: int = 0
    scheduled: int = 0
    expired: int = 0


@dataclass(frozen=True, slots=True)
class FileWarning:
    """Something in a file that was used anyway, and how (an unreadable date skipped)."""

    path: str
    warning: str


@dataclass(frozen=True, slots=True)
class ScanReport:
    """The outcome of one rescan (docs/api.md, ``POST /api/refresh``).

    ``resources``: files that are resources (never items, never failures);
    ``skipped``: documents that are not items by a site generator's convention
    (section pages, headless bundles, unlisted pages, redirect stubs);
    ``documents``: every document found; ``ignored``: entries skipped by name
    (hidden, ``content.ignore``); ``items``: the store's items after the scan,
    by what a reader sees of them. ``counts()`` is the newcomer's summary
    (docs/identity.md, "The scan report").
    """

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    errors: tuple[FileError, ...] = ()
    warnings: tuple[FileWarning, ...] = ()
    duration_ms: int = 0
    started_at: datetime | None = None
    generation: int = 0
    # Files left for a later scan because they were still being written
    # (``content.settle_seconds``): not errors, their last good version stays.
    pending: tuple[str, ...] = ()
    resources: int = 0
    skipped: int = 0
    documents: int = 0
    ignored: int = 0
    items: ItemCounts = ItemCounts()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        """One line for people: logs and ``feedsvc scan``."""
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged, {len(self.errors)} failed"
            + (f", {len(self.pending)} pending" if self.pending else "")
            + f" in {self.duration_ms} ms; "
            f"skipped: {self.resources} resources, {self.skipped} not items"
        )

    def counts(self) -> dict[str, int]:
        """Each kind of file and item with its count, in the order people read them."""
        return {
            "documents": self.documents,
            "items": self.items.listed,
            "drafts": self.items.drafts,
            "scheduled": self.items.scheduled,
            "expired": self.items.expired,
            "not items": self.skipped,
            "pending": len(self.pending),
            "resources": self.resources,
            "ignored": self.ignored,
            "failed": len(self.errors),
            "warnings": len(self.warnings),
        }

    def as_json(self) -> dict[str, object]:
        return {
            "counts": {name.replace(" ", "_"): n for name, n in self.counts().items()},
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "errors": [{"path": e.path, "error": e.error} for e in self.errors],
            "pending": list(self.pending),
            "warnings": [{"path": w.path, "warning": w.warning} for w in self.warnings],
            "duration_ms": self.duration_ms,
            "resources": self.resources,
            "skipped": self.skipped,
        }


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
    scans_total: int = 0  # every scan the store has recorded, for /metrics


@dataclass(frozen=True, slots=True)
class ScanFailure:
    """The last scan that failed as a whole (content folder gone, store refused).

    ``reason`` is safe to show anyone: no absolute path, URL or password.
    Cleared by the next scan that finishes.
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


@dataclass(frozen=True, slots=True)
class FeedKey:
    """One feed: a cell of the grid, ``/feeds/{language}/{category}.{fmt}``, or,
    for the ``tag`` and ``author`` facets, ``/feeds/{language}/{facet}/{slug}.{fmt}``.

    ``language`` is ``"all"`` or a language code; ``category`` is ``"all"`` or
    a category slug for the grid (``facet`` = ``"category"``), else the tag's
    or author's slug (docs/feeds-for-people.md).
    """

    language: str
    category: str
    facet: str = "category"

    @property
    def path_stem(self) -> str:
        if self.facet == FACET_CATEGORY:
            return f"{self.language}/{self.category}"
        return f"{self.language}/{self.facet}/{self.category}"


# The facets of feeds: the grid's categories, and feeds per tag and per author.
FACET_CATEGORY = "category"
FACET_TAG = "tag"
FACET_AUTHOR = "author"
TERM_FACETS = (FACET_TAG, FACET_AUTHOR)


@dataclass(frozen=True, slots=True)
class FeedInfo:
    """A feed that exists (it has at least one item), with its title parts."""

    key: FeedKey
    item_count: int
    category_name: str | None = None


def item_fields(
    item: Item, date: Callable[[datetime], str] = datetime.isoformat
) -> dict[str, object]:
    """Every field of ``item`` but ``content_hash``, as JSON-ready values in field order.

    The one mapping behind both the content hash and the store's row, so the
    two can never disagree on what an item is. ``date`` formats the datetimes.
    """
    return {
        "id": item.id,
        "guid": item.guid,
        "source_path": item.source_path,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "content_html": item.content_html,
        "content_text": item.content_text,
        "language": item.language,
        "categories": [{"name": c.name, "slug": c.slug} for c in item.categories],
        "tags": list(item.tags),
        "image": item.image,
        "authors": list(item.authors),
        "published": date(item.published),
        "updated": date(item.updated),
        "draft": item.draft,
        "publish_date": None if item.publish_date is None else date(item.publish_date),
        "expiry_date": None if item.expiry_date is None else date(item.expiry_date),
    }
