"""The store's tables and the codec between rows and feedsvc values; owns no connections.

Everything here is dialect-neutral SQLAlchemy Core: the same ``MetaData``
creates the schema on SQLite and on PostgreSQL. ``sql.py`` runs the queries.

Dates are kept as ISO-8601 text *with their offset* (``2024-11-13T15:42:35+09:00``)
because feeds print them as written: a timestamptz column would hand back UTC
and lose the +09:00. Ordering uses a separate UTC key column whose text sorts
in time order (``published_key``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from feedsvc.dates import shows_at
from feedsvc.errors import StoreError

# The one slug rule (docs/ids-and-slugs.md): tag and author slugs are made like category slugs.
from feedsvc.normalise.slug import slugify
from feedsvc.store import FileEventsState, ScanFailure
from feedsvc.types import (
    ALL,
    FACET_AUTHOR,
    FACET_CATEGORY,
    FACET_TAG,
    Category,
    FeedInfo,
    FeedKey,
    FileError,
    FileWarning,
    Item,
    ItemCounts,
    ScanReport,
    ScheduledItem,
    StoredFile,
    item_fields,
)

# Bump when a table or the JSON layout changes, and teach ``create`` to migrate.
# 2: item_terms (tag and author feeds) and known_feeds (feeds that once existed).
# 3: schedule (items the clock lists or unlists: docs/dates.md).
SCHEMA_VERSION = 3

metadata = sa.MetaData()

# Key/value rows: schema_version, generation, settings_digest, and FAILURE_KEY
# while the last scan failed as a whole.
meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

files = sa.Table(
    "files",
    metadata,
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("file_hash", sa.Text, nullable=False),
    sa.Column("item_id", sa.Text, nullable=True),
    sa.Column("first_seen", sa.Text, nullable=False),
    sa.Column("changed_at", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("source_path", sa.Text, nullable=False, index=True),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("published", sa.Text, nullable=False),  # ISO with its own offset
    sa.Column("published_key", sa.Text, nullable=False),  # UTC, sortable: see sort_key()
    sa.Column("draft", sa.Boolean, nullable=False),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # the whole Item as JSON
    # Both indexes match ORDER BY published_key DESC, id ASC exactly, so a
    # feed of 50 is an index range scan that stops after 50 rows.
    sa.Index("ix_items_feed", "draft", sa.desc("published_key"), "id"),
    sa.Index("ix_items_language_feed", "language", "draft", sa.desc("published_key"), "id"),
)

# One row per (item, category slug). language, draft and published_key are
# copied from the item (rewritten with it) so category feeds and their counts
# are served from this table's indexes alone, without sorting a join.
item_categories = sa.Table(
    "item_categories",
    metadata,
    sa.Column(
        "item_id",
        sa.Text,
        sa.ForeignKey("items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("slug", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("draft", sa.Boolean, nullable=False),
    sa.Column("published_key", sa.Text, nullable=False),
    sa.Index("ix_item_categories_feed", "slug", "draft", sa.desc("published_key"), "item_id"),
    sa.Index(
        "ix_item_categories_language_feed",
        "slug",
        "language",
        "draft",
        sa.desc("published_key"),
        "item_id",
    ),
    # Covers feeds()' GROUP BY: counts per cell and per display name.
    sa.Index("ix_item_categories_names", "slug", "name", "language", "draft"),
)

# One row per (item, facet, slug) for the tag and author facets: the same
# shape and indexes as item_categories, so a tag feed is one index range scan.
item_terms = sa.Table(
    "item_terms",
    metadata,
    sa.Column(
        "item_id",
        sa.Text,
        sa.ForeignKey("items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("facet", sa.String(16), primary_key=True),
    sa.Column("slug", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("draft", sa.Boolean, nullable=False),
    sa.Column("published_key", sa.Text, nullable=False),
    sa.Index("ix_item_terms_feed", "facet", "slug", "draft", sa.desc("published_key"), "item_id"),
    sa.Index(
        "ix_item_terms_language_feed",
        "facet",
        "slug",
        "language",
        "draft",
        sa.desc("published_key"),
        "item_id",
    ),
    sa.Index("ix_item_terms_names", "facet", "slug", "name", "language", "draft"),
)

# Every feed that ever had a (non-draft) item, with the display name it first had.
# Rows are only ever added, never changed or deleted: a feed whose last item
# left keeps answering as a valid empty feed (docs/feeds-for-people.md).
known_feeds = sa.Table(
    "known_feeds",
    metadata,
    sa.Column("facet", sa.String(16), primary_key=True),
    sa.Column("language", sa.Text, primary_key=True),
    sa.Column("slug", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
)

# Items whose listing the clock changes: a publish time still ahead when the item
# was written, or an expiry time. The ``draft`` columns of items, item_categories
# and item_terms mean "kept out of the feeds": a draft, or an item outside its
# window (feedsvc.dates.is_listed). ``SqlStore.release`` moves them as time passes;
# a row goes once its item is listed for good.
schedule = sa.Table(
    "schedule",
    metadata,
    sa.Column(
        "item_id",
        sa.Text,
        sa.ForeignKey("items.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("shows_key", sa.Text, nullable=False, index=True),  # sort_key() of shows_at
    sa.Column("hides_key", sa.Text, nullable=True, index=True),  # sort_key() of expiry_date
    sa.Column("shows_at", sa.Text, nullable=False),  # ISO with its own offset
    sa.Column("hides_at", sa.Text, nullable=True),
)

# A single row (id = 1): the last finished scan, for every process to see.
scan_state = sa.Table(
    "scan_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("report", sa.Text, nullable=False),
    sa.Column("finished_at", sa.Text, nullable=False),
)


# --- setup -------------------------------------------------------------------------------


def stored_version(conn: sa.Connection) -> int | None:
    """The schema version recorded in the store, or None for an empty database."""
    if not sa.inspect(conn).has_table("meta"):
        return None
    q = sa.select(meta.c.value).where(meta.c.key == "schema_version")
    value = conn.execute(q).scalar_one_or_none()
    return None if value is None else int(value)


def create(conn: sa.Connection, insert: Callable[[sa.Table], Any]) -> None:
    """Create missing tables and seed ``meta``, inside the caller's write transaction.

    ``insert`` is the dialect's own ``insert`` (it has ``on_conflict_do_nothing``).
    Refuses a store written by a newer feedsvc rather than corrupt it.
    """
    version = stored_version(conn)  # re-read: another process may have created it
    if version is not None and version > SCHEMA_VERSION:
        raise StoreError(
            f"store schema version {version} is newer than this feedsvc supports"
            f" ({SCHEMA_VERSION}); upgrade feedsvc"
        )
    if version is not None and version < 1:
        raise StoreError(f"store schema version {version} is unknown; no migration exists")
    metadata.create_all(conn)  # adds the tables an older store lacks
    if version == 1:
        _migrate_from_1(conn, insert)
    if version is not None and version < SCHEMA_VERSION:
        # 2 -> 3 adds the schedule table only: filled as items are written,
        # and every item is, once: normalise.RULES_VERSION moved with it.
        conn.execute(
            sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
        )
    seed = insert(meta).on_conflict_do_nothing(index_elements=["key"])
    conn.execute(
        seed,
        [
            {"key": "schema_version", "value": str(SCHEMA_VERSION)},
            {"key": "generation", "value": "0"},
        ],
    )


def _migrate_from_1(conn: sa.Connection, insert: Callable[[sa.Table], Any]) -> None:
    """Version 1 -> 2: fill item_terms and known_feeds from the stored items."""
    for (data,) in conn.execute(sa.select(items.c.data)):
        item = load_item(data)
        row = {
            "language": item.language,
            "draft": item.draft,
            "published_key": sort_key(item.published),
        }
        terms = term_rows(item, row)
        if terms:
            conn.execute(sa.insert(item_terms), terms)
        known = known_feed_rows(item)
        if known:
            conn.execute(insert(known_feeds).on_conflict_do_nothing(), known)
    conn.execute(
        sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )


# --- dates ---------------------------------------------------------------------------------


def dump_dt(value: datetime) -> str:
    """ISO-8601 with the value's own offset; refuses naive datetimes (a caller bug)."""
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime cannot be stored: {value!r}")
    return value.isoformat()


def load_dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _load_optional_dt(text: str | None) -> datetime | None:
    return None if text is None else load_dt(text)


def schedule_row(item: Item) -> dict[str, Any]:
    """The ``schedule`` row of an item the clock lists or unlists (``dates.is_timed``)."""
    starts = shows_at(item)
    ends = item.expiry_date
    return {
        "item_id": item.id,
        "shows_key": sort_key(starts),
        "hides_key": None if ends is None else sort_key(ends),
        "shows_at": dump_dt(starts),
        "hides_at": None if ends is None else dump_dt(ends),
    }


def load_scheduled(
    item_id: str, source_path: str, shows_at: str, hides_at: str | None
) -> ScheduledItem:
    return ScheduledItem(item_id, source_path, load_dt(shows_at), _load_optional_dt(hides_at))


def sort_key(value: datetime) -> str:
    """Fixed-width UTC text that sorts in time order: ``YYYY-MM-DDTHH:MM:SS.ffffffZ``.

    Built by hand: ``strftime('%Y')`` does not zero-pad years before 1000.
    """
    u = value.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T"
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}Z"
    )


def _dumps(value: object) -> str:
    # allow_nan=False: NaN/Infinity are not JSON (json.dumps writes them by default).
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


# --- items ---------------------------------------------------------------------------------


def item_row(item: Item, *, listed: bool | None = None) -> dict[str, Any]:
    """The ``items`` row for one item (JSON encoded once, here).

    ``listed``: whether it is in the feeds now (None: unless it is a draft).
    """
    data = _dumps({**item_fields(item, dump_dt), "content_hash": item.content_hash})
    # The store's change key. An item without a content_hash still gets one,
    # so "write only when the hash differs" never hides a real change.
    digest = item.content_hash or "data:" + hashlib.sha256(data.encode("utf-8")).hexdigest()
    return {
        "id": item.id,
        "source_path": item.source_path,
        "language": item.language,
        "published": dump_dt(item.published),
        "published_key": sort_key(item.published),
        "draft": item.draft if listed is None else not listed,
        "content_hash": digest,
        "data": data,
    }


def category_rows(item: Item, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``item_categories`` rows; a slug repeated in one item counts once (first name wins)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for position, cat in enumerate(item.categories):
        if cat.slug in seen:
            continue
        seen.add(cat.slug)
        out.append(
            {
                "item_id": item.id,
                "slug": cat.slug,
                "name": cat.name,
                "position": position,
                "language": row["language"],
                "draft": row["draft"],
                "published_key": row["published_key"],
            }
        )
    return out


def term_rows(item: Item, row: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``item_terms`` rows: the item's tags and authors by slug (first name wins)."""
    out: list[dict[str, Any]] = []
    for facet, names in ((FACET_TAG, item.tags), (FACET_AUTHOR, item.authors)):
        seen: set[str] = set()
        for name in names:
            slug = slugify(name)
            if not slug or slug in seen:
                continue
            seen.add(slug)
            out.append(
                {
                    "item_id": item.id,
                    "facet": facet,
                    "slug": slug,
                    "name": name,
                    "language": row["language"],
                    "draft": row["draft"],
                    "published_key": row["published_key"],
                }
            )
    return out


def known_feed_rows(item: Item) -> list[dict[str, Any]]:
    """Every feed this (non-draft) item puts on the map, in every facet and column."""
    if item.draft:
        return []
    named: list[tuple[str, str, str]] = [(FACET_CATEGORY, ALL, "")]
    named += [(FACET_CATEGORY, c.slug, c.name) for c in item.categories]
    for facet, names in ((FACET_TAG, item.tags), (FACET_AUTHOR, item.authors)):
        named += [(facet, slugify(name), name) for name in names]
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for facet, slug, name in named:
        if not slug:
            continue
        for language in (ALL, item.language):
            rows.setdefault(
                (facet, language, slug),
                {"facet": facet, "language": language, "slug": slug, "name": name},
            )
    return list(rows.values())


def load_item(data: str) -> Item:
    d = json.loads(data)
    return Item(
        id=d["id"],
        guid=d["guid"],
        source_path=d["source_path"],
        url=d["url"],
        title=d["title"],
        summary=d["summary"],
        content_html=d["content_html"],
        content_text=d["content_text"],
        language=d["language"],
        categories=tuple(Category(name=c["name"], slug=c["slug"]) for c in d["categories"]),
        tags=tuple(d["tags"]),
        image=d["image"],
        authors=tuple(d["authors"]),
        published=load_dt(d["published"]),
        updated=load_dt(d["updated"]),
        draft=bool(d["draft"]),
        publish_date=_load_optional_dt(d.get("publish_date")),
        expiry_date=_load_optional_dt(d.get("expiry_date")),
        content_hash=d["content_hash"],
    )


# --- feeds ---------------------------------------------------------------------------------


def feed_infos(
    langs: Iterable[tuple[str, int]], cats: Iterable[tuple[str, str, str, int]]
) -> tuple[FeedInfo, ...]:
    """Fold grouped non-draft counts into grid cells, sorted with ``all`` first.

    ``langs``: (language, items); ``cats``: (slug, display name, language,
    items). An item has one row per slug, so summing a slug's rows counts
    each of its items once.
    """
    counts: dict[tuple[str, str], int] = {}
    for lang, n in langs:
        counts[lang, "all"] = n
        counts["all", "all"] = counts.get(("all", "all"), 0) + n
    names: dict[str, dict[str, int]] = {}
    for slug, name, lang, n in cats:
        counts[lang, slug] = counts.get((lang, slug), 0) + n
        counts["all", slug] = counts.get(("all", slug), 0) + n
        per_slug = names.setdefault(slug, {})
        per_slug[name] = per_slug.get(name, 0) + n
    # The most common display name of a slug; ties go to the smallest name.
    best = {slug: min(ns, key=lambda name: (-ns[name], name)) for slug, ns in names.items()}
    keys = sorted(counts, key=lambda k: (k[0] != "all", k[0], k[1] != "all", k[1]))
    return tuple(
        FeedInfo(
            key=FeedKey(language=lang, category=cat),
            item_count=counts[lang, cat],
            category_name=None if cat == "all" else best[cat],
        )
        for lang, cat in keys
    )


def term_infos(facet: str, cats: Iterable[tuple[str, str, str, int]]) -> tuple[FeedInfo, ...]:
    """Tag or author feeds from grouped non-draft counts: ``all`` and per language.

    ``cats``: (slug, name, language, items). Sorted by slug, ``all`` first.
    """
    counts: dict[tuple[str, str], int] = {}
    names: dict[str, dict[str, int]] = {}
    for slug, name, lang, n in cats:
        counts[lang, slug] = counts.get((lang, slug), 0) + n
        counts[ALL, slug] = counts.get((ALL, slug), 0) + n
        per_slug = names.setdefault(slug, {})
        per_slug[name] = per_slug.get(name, 0) + n
    best = {slug: min(ns, key=lambda name: (-ns[name], name)) for slug, ns in names.items()}
    keys = sorted(counts, key=lambda k: (k[1], k[0] != ALL, k[0]))
    return tuple(
        FeedInfo(
            key=FeedKey(language=lang, category=slug, facet=facet),
            item_count=counts[lang, slug],
            category_name=best[slug],
        )
        for lang, slug in keys
    )


# --- files ---------------------------------------------------------------------------------


def file_row(f: StoredFile) -> dict[str, Any]:
    # "Never changed" is stored as changed_at = first_seen (the column is NOT
    # NULL): the same instant cannot be both the first sight and a change.
    # Rows written before honest dates hold changed_at = first_seen for every
    # file never edited since, so they read back as "never changed" too.
    return {
        "path": f.path,
        "size": f.size,
        "mtime_ns": f.mtime_ns,
        "file_hash": f.file_hash,
        "item_id": f.item_id,
        "first_seen": dump_dt(f.first_seen),
        "changed_at": dump_dt(f.first_seen if f.changed_at is None else f.changed_at),
        "error": f.error,
    }


def load_file(row: sa.Row[Any]) -> StoredFile:
    return StoredFile(
        path=row.path,
        size=row.size,
        mtime_ns=row.mtime_ns,
        file_hash=row.file_hash,
        item_id=row.item_id,
        first_seen=load_dt(row.first_seen),
        changed_at=None if row.changed_at == row.first_seen else load_dt(row.changed_at),
        error=row.error,
    )


# --- scan failures -------------------------------------------------------------------------

FAILURE_KEY = "scan_failure"
# Health reports (feedsvc.health), one row per role: "watch", "serve".
HEALTH_KEY_PREFIX = "health:"
SCANS_KEY = "scans_total"
# Replaced by every transaction that writes files or items (see SqlStore.file_states).
FILES_STAMP_KEY = "files_stamp"


def dump_failure(failure: ScanFailure) -> str:
    return _dumps({"reason": failure.reason, "failed_at": dump_dt(failure.failed_at)})


def load_failure(text: str) -> ScanFailure:
    d = json.loads(text)
    return ScanFailure(reason=str(d["reason"]), failed_at=load_dt(d["failed_at"]))


# --- file events --------------------------------------------------------------------------

FILE_EVENTS_KEY = "file_events"


def dump_file_events(state: FileEventsState) -> str:
    return _dumps(
        {"available": state.available, "reason": state.reason, "since": dump_dt(state.since)}
    )


def load_file_events(text: str) -> FileEventsState:
    d = json.loads(text)
    return FileEventsState(
        available=bool(d["available"]), reason=d.get("reason"), since=load_dt(d["since"])
    )


# --- scan reports --------------------------------------------------------------------------


def dump_report(report: ScanReport) -> str:
    body = report.as_json()
    body["started_at"] = None if report.started_at is None else dump_dt(report.started_at)
    body["generation"] = report.generation
    return _dumps(body)


def load_report(text: str) -> ScanReport:
    d = json.loads(text)
    started = d.get("started_at")
    counts = d.get("counts", {})
    return ScanReport(
        added=d["added"],
        updated=d["updated"],
        removed=d["removed"],
        unchanged=d["unchanged"],
        errors=tuple(FileError(path=e["path"], error=e["error"]) for e in d["errors"]),
        warnings=tuple(
            FileWarning(path=w["path"], warning=w["warning"]) for w in d.get("warnings", ())
        ),
        duration_ms=d["duration_ms"],
        started_at=None if started is None else load_dt(started),
        generation=d.get("generation", 0),
        pending=tuple(d.get("pending", ())),
        resources=d.get("resources", 0),
        skipped=d.get("skipped", 0),
        documents=counts.get("documents", 0),
        ignored=counts.get("ignored", 0),
        items=ItemCounts(
            listed=counts.get("items", 0),
            drafts=counts.get("drafts", 0),
            scheduled=counts.get("scheduled", 0),
            expired=counts.get("expired", 0),
        ),
    )
