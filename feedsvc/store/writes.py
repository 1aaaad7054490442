"""A scan's writes: the scan writer and the SQL that changes items and files; owns no reads.

Everything a scan changes lands in ONE transaction (``SqlScanWriter``), and
a row is written only when its content hash differs, so the generation (and
with it every feed's ETag) moves only with content. ``sql.py`` opens the
writer; the clock's ``release`` bumps the generation with ``bump_generation``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from feedsvc.store import codec, timed
from feedsvc.store import schema as s
from feedsvc.store.backend import Backend
from feedsvc.store.engine import Connections
from feedsvc.store.file_states import FileStates, FilesWrite
from feedsvc.types import Item, ScanChanges, StoredFile


class SqlScanWriter:
    """``ScanWriter`` on one pooled connection and one write transaction.

    The connection and the transaction are taken by the first chunk that
    writes anything (SQLite: ``BEGIN IMMEDIATE``, the write lock, held until
    ``commit``; readers in WAL mode keep reading the last commit meanwhile).
    ``idle``: the generation when there is nothing to write at all.
    """

    def __init__(
        self,
        db: Connections,
        states: FileStates,
        now: datetime | None,
        idle: Callable[[], int],
    ) -> None:
        self._db = db
        self._states = states
        self._now = now
        self._idle = idle
        self._stack = ExitStack()
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None
        self._files: FilesWrite | None = None
        self._touched = 0
        self._done = False

    def _open(self) -> tuple[sa.Connection, FilesWrite]:
        if self._done:
            raise RuntimeError("this scan was already committed")
        if self._conn is None or self._files is None:
            conn = self._stack.enter_context(self._db.connect(self._db.backend.write_options))
            self._tx = conn.begin()
            self._conn = conn
            self._files = self._states.begin(conn)
        return self._conn, self._files

    def stage(self, files: Sequence[StoredFile], items: Sequence[Item]) -> None:
        if not files and not items:
            return
        backend = self._db.backend
        with self._db.errors("apply a scan"):
            conn, written = self._open()
            write_files(conn, backend, files)
            self._touched += write_items(conn, backend, items, self._now)
        written.note(files, ())

    def commit(self, changes: ScanChanges) -> int:
        if self._conn is None and changes.empty:
            # Nothing to do must mean nothing written: no write lock, no
            # UPDATE, so feeds and their ETags cannot move; unless items fell
            # due by now (docs/dates.md), which ``idle`` then releases.
            self._done = True
            return self._idle()
        with self._db.errors("apply a scan"):
            conn, written = self._open()
            generation = _apply(conn, self._db.backend, changes, self._touched, self._now)
            written.note(changes.files, changes.removed_paths)
            self._states.seal(conn, self._db.backend, written)
            assert self._tx is not None
            self._tx.commit()
        self._done = True
        self._states.committed(written)
        return generation

    def close(self) -> None:
        """Roll back whatever was staged and not committed; give the connection back."""
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        finally:
            self._stack.close()
            self._conn = self._tx = None
            self._done = True


def _apply(
    conn: sa.Connection,
    backend: Backend,
    changes: ScanChanges,
    touched: int,
    now: datetime | None,
) -> int:
    """The body of a scan's transaction, after any staged chunks; ``touched``:
    items those chunks changed. Returns the generation."""
    touched += _delete_removed(conn, changes)
    _delete_in(conn, s.files, s.files.c.path, changes.removed_paths)
    write_files(conn, backend, changes.files)
    touched += write_items(conn, backend, changes.items, now)
    if now is not None:  # what the timer may not have done yet (a watcher was down)
        touched += timed.release(conn, backend, now)
    digest = conn.execute(s.meta_value(s.SETTINGS_DIGEST_KEY)).scalar()
    if changes.settings_digest not in (None, digest):
        conn.execute(
            backend.upsert(s.meta, ["key"]),
            {"key": s.SETTINGS_DIGEST_KEY, "value": changes.settings_digest},
        )
    if touched:
        return bump_generation(conn)
    return int(conn.execute(s.meta_value(s.GENERATION_KEY)).scalar_one())


def bump_generation(conn: sa.Connection) -> int:
    """Move the generation on by one inside the caller's transaction; return it."""
    bump = (
        sa.update(s.meta)
        .where(s.meta.c.key == s.GENERATION_KEY)
        .values(value=sa.cast(sa.cast(s.meta.c.value, sa.BigInteger) + 1, sa.Text))
        .returning(s.meta.c.value)
    )
    return int(conn.execute(bump).scalar_one())


def stored_hashes(conn: sa.Connection, item_ids: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(id, content_hash) of those of ``item_ids`` that are stored, in chunks."""
    i = s.items
    for chunk in s.chunks(item_ids):
        q = sa.select(i.c.id, i.c.content_hash).where(i.c.id.in_(chunk))
        yield from ((row[0], row[1]) for row in conn.execute(q))


def execute_many(conn: sa.Connection, statement: sa.Insert, rows: Sequence[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)`` with the statement compiled once and the
    rows handed to the driver's ``executemany`` as they are.

    The rows hold only values the drivers take as they are (str, int, bool,
    None: ``codec``). SQLAlchemy's own executemany processes every row's
    parameters in Python: about 0.5 s of the scan process's 2.7 s of CPU in a
    10,000-file cold scan (bench/README.md). Every row must have the keys of
    the first.
    """
    if not rows:
        return
    compiled = statement.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        order = compiled.positiontup or []
        # itemgetter builds each row's tuple in C: a generator per row cost
        # a tenth of the scan process's CPU in a cold scan (bench/README.md).
        conn.exec_driver_sql(str(compiled), list(map(_picker(order), rows)))
    else:
        conn.exec_driver_sql(str(compiled), list(rows))


def _picker(keys: Sequence[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A row's values for ``keys``, as a tuple even for one key."""
    if len(keys) == 1:
        key = keys[0]
        return lambda row: (row[key],)
    return itemgetter(*keys)


def write_files(conn: sa.Connection, backend: Backend, files: Sequence[StoredFile]) -> None:
    if files:
        execute_many(conn, backend.upsert(s.files, ["path"]), [codec.file_row(f) for f in files])


def write_items(
    conn: sa.Connection, backend: Backend, items: Sequence[Item], now: datetime | None
) -> int:
    """Upsert the items whose content hash differs from the stored one; return how many.

    ``now``: the moment their listing is judged at (scheduled, expired:
    ``feedsvc.dates.is_listed``); None lists every item that is not a draft.

    Hashes are compared before encoding: re-applying 50,000 unchanged items
    costs one indexed read, not 50,000 JSON encodings. (A failed encoding
    rolls the whole scan back like any other error.) An item without a
    ``content_hash`` is compared by the digest its row gets.
    """
    latest = {item.id: item for item in items}  # a repeated id: the last one wins
    stored = dict(stored_hashes(conn, list(latest)))
    changed: list[tuple[dict[str, Any], Item]] = []
    for item in latest.values():
        if item.content_hash and stored.get(item.id) == item.content_hash:
            continue
        row = codec.item_row(item, listed=timed.listed_now(item, now))
        if stored.get(item.id) != row["content_hash"]:
            changed.append((row, item))
    if not changed:
        return 0
    execute_many(conn, backend.upsert(s.items, ["id"]), [row for row, _ in changed])
    _write_facets(conn, changed)
    timed.write_schedule(conn, [item for _, item in changed], now)
    # Insert-if-missing, not upsert: nearly every key is known already, and a
    # conflict that writes nothing is the cheap case (the name kept is the first
    # seen; feeds with items take their names from the items).
    # An item kept out of the feeds (scheduled) puts no feed on the map yet.
    known = {
        (k["facet"], k["language"], k["slug"]): k
        for row, item in changed
        if not row["draft"]
        for k in codec.known_feed_rows(item)
    }
    if known:
        insert = backend.insert(s.known_feeds).on_conflict_do_nothing()
        execute_many(conn, insert, list(known.values()))
    return len(changed)


def _write_facets(conn: sa.Connection, changed: Sequence[tuple[dict[str, Any], Item]]) -> None:
    """Replace the category and term rows of the items just written."""
    c, t = s.item_categories, s.item_terms
    ids = [item.id for _, item in changed]
    _delete_in(conn, c, c.c.item_id, ids)
    _delete_in(conn, t, t.c.item_id, ids)
    cat_rows = [cat for row, item in changed for cat in codec.category_rows(item, row)]
    execute_many(conn, sa.insert(c), cat_rows)
    term_rows = [term for row, item in changed for term in codec.term_rows(item, row)]
    execute_many(conn, sa.insert(t), term_rows)


def _delete_in(
    conn: sa.Connection, table: sa.Table, col: sa.Column[Any], keys: Sequence[str]
) -> int:
    deleted = 0
    for chunk in s.chunks(keys):
        deleted += conn.execute(sa.delete(table).where(col.in_(chunk))).rowcount
    return deleted


def _delete_removed(conn: sa.Connection, changes: ScanChanges) -> int:
    """Delete the items of removed files and the removed ids; return items deleted."""
    i, c, t = s.items, s.item_categories, s.item_terms
    deleted = 0
    for chunk in s.chunks(changes.removed_paths):
        of_paths = sa.select(i.c.id).where(i.c.source_path.in_(chunk))
        conn.execute(sa.delete(c).where(c.c.item_id.in_(of_paths)))
        conn.execute(sa.delete(t).where(t.c.item_id.in_(of_paths)))
        deleted += conn.execute(sa.delete(i).where(i.c.source_path.in_(chunk))).rowcount
    _delete_in(conn, c, c.c.item_id, changes.removed_items)
    _delete_in(conn, t, t.c.item_id, changes.removed_items)
    deleted += _delete_in(conn, i, i.c.id, changes.removed_items)
    return deleted
