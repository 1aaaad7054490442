"""The store's side of scheduled and expiring items: SQL on the ``schedule`` table only.

Which items are listed at a moment is ``feedsvc.dates.is_listed``; this module
keeps the ``draft`` columns (meaning "kept out of the feeds") in step with it
as time passes, and answers when that next changes (docs/dates.md).
Dialect-neutral; every function runs inside the caller's connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from feedsvc.dates import is_listed, is_timed
from feedsvc.store import codec
from feedsvc.store import schema as s
from feedsvc.store.backend import Backend
from feedsvc.types import Item, ItemCounts, ScheduledItem


def write_schedule(conn: sa.Connection, items: Sequence[Item], now: datetime | None) -> None:
    """Replace the schedule rows of ``items`` (just written) as seen at ``now``."""
    sc = s.schedule
    for chunk in s.chunks([item.id for item in items]):
        conn.execute(sa.delete(sc).where(sc.c.item_id.in_(chunk)))
    if now is None:
        return
    rows = [codec.schedule_row(item) for item in items if is_timed(item, now)]
    if rows:
        conn.execute(sa.insert(sc), rows)


def listed_now(item: Item, now: datetime | None) -> bool | None:
    """The ``listed`` argument of ``schema.item_row`` (None without a clock)."""
    return None if now is None else is_listed(item, now)


def due(conn: sa.Connection, now: datetime) -> tuple[list[str], list[str]]:
    """(ids to put in the feeds, ids to take out) at ``now``: a read, no writes."""
    key = codec.sort_key(now)
    sc, i = s.schedule, s.items
    q = sa.select(sc.c.item_id, sc.c.shows_key, sc.c.hides_key, i.c.draft).join(
        i, i.c.id == sc.c.item_id
    )
    shown: list[str] = []
    hidden: list[str] = []
    for item_id, shows_key, hides_key, out in conn.execute(q):
        listed = shows_key <= key and (hides_key is None or hides_key > key)
        if listed and out:
            shown.append(item_id)
        elif not listed and not out:
            hidden.append(item_id)
    return shown, hidden


def release(conn: sa.Connection, backend: Backend, now: datetime) -> int:
    """List the scheduled items whose time came, unlist the expired; return how many moved.

    Idempotent: a second call at the same moment (another instance's
    watcher) finds nothing to move and writes nothing.
    """
    shown, hidden = due(conn, now)
    if not shown and not hidden:
        return 0
    key = codec.sort_key(now)
    sc = s.schedule
    _set_out(conn, shown, out=False)
    _set_out(conn, hidden, out=True)
    if shown:
        _note_known_feeds(conn, backend, shown)
    # Listed for good (no expiry): the clock has nothing more to do with them.
    conn.execute(sa.delete(sc).where(sc.c.shows_key <= key, sc.c.hides_key.is_(None)))
    return len(shown) + len(hidden)


def next_change(conn: sa.Connection, now: datetime) -> datetime | None:
    """The first moment after ``now`` at which an item enters or leaves the feeds."""
    key = codec.sort_key(now)
    sc = s.schedule
    shows = conn.execute(
        sa.select(sc.c.shows_at).where(sc.c.shows_key > key).order_by(sc.c.shows_key).limit(1)
    ).scalar_one_or_none()
    hides = conn.execute(
        sa.select(sc.c.hides_at)
        .where(sc.c.hides_key > key, sc.c.hides_key.is_not(None))
        .order_by(sc.c.hides_key)
        .limit(1)
    ).scalar_one_or_none()
    moments = [codec.load_dt(text) for text in (shows, hides) if text is not None]
    return min(moments) if moments else None


def scheduled(conn: sa.Connection) -> tuple[ScheduledItem, ...]:
    """Every item the clock still lists or unlists, soonest first."""
    sc, i = s.schedule, s.items
    q = (
        sa.select(sc.c.item_id, i.c.source_path, sc.c.shows_at, sc.c.hides_at)
        .join(i, i.c.id == sc.c.item_id)
        .order_by(sc.c.shows_key, sc.c.item_id)
    )
    return tuple(codec.load_scheduled(*row) for row in conn.execute(q))


def flag_counts(conn: sa.Connection) -> tuple[int, int, int]:
    """(items listed, items kept out, kept-out items with a schedule row).

    They change only with the generation: ``sql.SqlStore.item_counts`` keeps them per generation.
    """
    sc, i = s.schedule, s.items
    flags = conn.execute(sa.select(i.c.draft, sa.func.count()).group_by(i.c.draft))
    by_flag: dict[bool, int] = {bool(out): int(n) for out, n in flags}
    timed_out = conn.execute(
        sa.select(sa.func.count()).select_from(sc.join(i, i.c.id == sc.c.item_id)).where(i.c.draft)
    ).scalar_one()
    return by_flag.get(False, 0), by_flag.get(True, 0), int(timed_out)


def counts(conn: sa.Connection, now: datetime, flags: tuple[int, int, int]) -> ItemCounts:
    """Items by what a reader sees of them at ``now``, from ``flag_counts`` and the schedule."""
    key = codec.sort_key(now)
    sc = s.schedule
    waiting = conn.execute(
        sa.select(sa.func.count()).select_from(sc).where(sc.c.shows_key > key)
    ).scalar_one()
    expired = conn.execute(
        sa.select(sa.func.count())
        .select_from(sc)
        .where(sc.c.hides_key.is_not(None), sc.c.hides_key <= key)
    ).scalar_one()
    listed, out, timed_out = flags
    return ItemCounts(
        listed=listed,
        # Drafts never get a schedule row: every other item kept out has one.
        drafts=out - timed_out,
        scheduled=int(waiting),
        expired=int(expired),
    )


def _set_out(conn: sa.Connection, item_ids: list[str], *, out: bool) -> None:
    """Put items in or out of the feeds: their rows in every table that lists them."""
    tables: list[tuple[sa.Table, sa.Column[Any]]] = [
        (s.items, s.items.c.id),
        (s.item_categories, s.item_categories.c.item_id),
        (s.item_terms, s.item_terms.c.item_id),
    ]
    for chunk in s.chunks(item_ids):
        for table, column in tables:
            conn.execute(sa.update(table).where(column.in_(chunk)).values(draft=out))


def _note_known_feeds(conn: sa.Connection, backend: Backend, item_ids: list[str]) -> None:
    """A released item puts its feeds on the map, as if it had just been written."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for chunk in s.chunks(item_ids):
        for (data,) in conn.execute(sa.select(s.items.c.data).where(s.items.c.id.in_(chunk))):
            for row in codec.known_feed_rows(codec.load_item(data)):
                rows[row["facet"], row["language"], row["slug"]] = row
    if rows:
        # As when items are written: insert if missing, keep the first name.
        conn.execute(backend.insert(s.known_feeds).on_conflict_do_nothing(), list(rows.values()))
