"""The store's tables and their setup (create, migrate); owns no connections and no queries.

Everything here is dialect-neutral SQLAlchemy Core: the same ``MetaData``
creates the schema on SQLite and on PostgreSQL. ``sql.py`` and ``writes.py``
run the queries; ``codec.py`` turns rows into values and back.

Every moment is stored twice where it is compared: as written (``moment``,
ISO 8601 with its own offset, which feeds print) and as UTC text that sorts
in time order (``moment_key``). The WebSub hub's tables (``hub_schema.py``)
follow the same shapes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa

from feedsvc.errors import StoreError
from feedsvc.store import codec

T = TypeVar("T")

# The one UTC sort key of a moment; feedsvc.websub reads it from here.
sort_key = codec.sort_key

# Rows per IN (...) list: far below SQLite's bound-parameter limit.
CHUNK = 500


def chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    """``values`` in slices of at most ``CHUNK``: one IN (...) list each."""
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


# --- the shapes every table shares ---------------------------------------------------------


def moment(name: str, *, nullable: bool = False) -> sa.Column[str]:
    """A moment as written: ISO 8601 with its own offset (``codec.dump_dt``)."""
    return sa.Column(name, sa.Text, nullable=nullable)


def moment_key(name: str, *, nullable: bool = False, index: bool = False) -> sa.Column[str]:
    """A moment as fixed-width UTC text that sorts in time order (``codec.sort_key``)."""
    return sa.Column(name, sa.Text, nullable=nullable, index=index)


def _item_ref() -> sa.Column[str]:
    """The ``item_id`` of a row that lives and dies with its item."""
    return sa.Column(
        "item_id", sa.Text, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    )


# --- the item store's tables ---------------------------------------------------------------

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
    moment("first_seen"),
    moment("changed_at"),
    sa.Column("error", sa.Text, nullable=True),
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("source_path", sa.Text, nullable=False, index=True),
    sa.Column("language", sa.Text, nullable=False),
    moment("published"),
    moment_key("published_key"),
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
    _item_ref(),
    sa.Column("slug", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("draft", sa.Boolean, nullable=False),
    moment_key("published_key"),
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
    _item_ref(),
    sa.Column("facet", sa.String(16), primary_key=True),
    sa.Column("slug", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("language", sa.Text, nullable=False),
    sa.Column("draft", sa.Boolean, nullable=False),
    moment_key("published_key"),
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
# window (feedsvc.dates.is_listed). ``timed.release`` moves them as time passes;
# a row goes once its item is listed for good.
schedule = sa.Table(
    "schedule",
    metadata,
    _item_ref(),
    moment_key("shows_key", index=True),  # of shows_at
    moment_key("hides_key", nullable=True, index=True),  # of expiry_date
    moment("shows_at"),
    moment("hides_at", nullable=True),
)

# A single row (id = 1): the last finished scan, for every process to see.
scan_state = sa.Table(
    "scan_state",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("report", sa.Text, nullable=False),
    moment("finished_at"),
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
            {"key": GENERATION_KEY, "value": "0"},
        ],
    )


def _migrate_from_1(conn: sa.Connection, insert: Callable[[sa.Table], Any]) -> None:
    """Version 1 -> 2: fill item_terms and known_feeds from the stored items."""
    for (data,) in conn.execute(sa.select(items.c.data)):
        item = codec.load_item(data)
        row = {
            "language": item.language,
            "draft": item.draft,
            "published_key": sort_key(item.published),
        }
        terms = codec.term_rows(item, row)
        if terms:
            conn.execute(sa.insert(item_terms), terms)
        known = codec.known_feed_rows(item)
        if known:
            conn.execute(insert(known_feeds).on_conflict_do_nothing(), known)
    conn.execute(
        sa.update(meta).where(meta.c.key == "schema_version").values(value=str(SCHEMA_VERSION))
    )


# --- meta keys -----------------------------------------------------------------------------

GENERATION_KEY = "generation"
SETTINGS_DIGEST_KEY = "settings_digest"
FAILURE_KEY = "scan_failure"
# Health reports (feedsvc.health), one row per role: "watch", "serve".
HEALTH_KEY_PREFIX = "health:"
SCANS_KEY = "scans_total"
FILE_EVENTS_KEY = "file_events"
# Replaced by every transaction that writes file rows (``file_states.FileStates``).
FILES_STAMP_KEY = "files_stamp"


def meta_value(key: str) -> sa.Select[str]:
    """The value of one ``meta`` row (no row: no result)."""
    return sa.select(meta.c.value).where(meta.c.key == key)
