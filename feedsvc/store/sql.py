"""SqlStore: the ``Store`` protocol on SQLite and PostgreSQL; owns all SQL, no parsing or rendering.

Dialect-neutral: every SQLite/PostgreSQL difference is in ``backend.py``.
Database errors are wrapped into ``StoreError`` here, with a message that
never carries the URL or password.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar, cast

import sqlalchemy as sa

from feedsvc.errors import StoreError
from feedsvc.store import FileEventsState, ScanChanges, ScanFailure, ScanState, timed
from feedsvc.store import schema as s
from feedsvc.store.backend import Backend, open_backend
from feedsvc.types import (
    ALL,
    FACET_CATEGORY,
    FeedInfo,
    FeedKey,
    FileState,
    Item,
    ItemCounts,
    ScheduledItem,
    StoredFile,
)

if TYPE_CHECKING:
    from feedsvc.store.hub import HubStore

log = logging.getLogger(__name__)
T = TypeVar("T")
Options = Mapping[str, Any]

# Rows per IN (...) list: far below SQLite's bound-parameter limit.
_CHUNK = 500


# --- fork hygiene --------------------------------------------------------------------------

_OPEN: weakref.WeakSet[SqlStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_OPEN):
        store.after_fork()


# A forked child (a server worker) must not reuse the parent's sockets.
os.register_at_fork(after_in_child=_after_fork_in_child)


# --- the store -----------------------------------------------------------------------------


class SqlStore:
    """The store on SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://...``).

    One instance is shared by threads: every call checks a connection out of
    the engine's pool and returns it. Opening creates the schema if missing.
    """

    def __init__(self, url: str) -> None:
        self._backend = open_backend(url)
        self._password = sa.make_url(url).password
        self._engine = self._backend.engine
        self._generation_q = sa.select(s.meta.c.value).where(s.meta.c.key == "generation")
        self._generation_sql = str(
            self._generation_q.compile(self._engine, compile_kwargs={"literal_binds": True})
        )
        self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        # (files stamp, states) of the last full read: see file_states.
        self._states: tuple[str, Mapping[str, FileState]] | None = None
        # (generation, timed.flag_counts) of the last item_counts.
        self._flag_counts: tuple[int, tuple[int, int, int]] | None = None
        self._hub: HubStore | None = None
        try:
            self._ensure_schema()
        except BaseException:
            self.close()
            raise
        self._identity = _file_identity(self._backend.path)
        self._identity_checked = time.monotonic()
        _OPEN.add(self)

    # -- lifecycle --

    def _ensure_schema(self) -> None:
        with self._errors("open the store"):
            with self._connect(self._backend.single_options) as conn:
                if s.stored_version(conn) == s.SCHEMA_VERSION:
                    return
            with self._connect(self._backend.write_options) as conn, conn.begin():
                self._backend.setup_lock(conn)
                s.create(conn, self._backend.insert)

    def hub(self) -> HubStore:
        """The WebSub hub's tables on this store (created on first use)."""
        if self._hub is None:
            from feedsvc.store.hub import HubStore

            self._hub = HubStore(self)
        return self._hub

    def reopen_if_replaced(self, *, create: bool) -> str | None:
        """Notice a store file deleted or replaced under this process (docs/operations.md).

        The rule: connections to a file that is no longer the store's path are
        dropped, so nothing is written into a deleted file. A replaced file is
        used from now on; a deleted one is created afresh when ``create`` (the
        watcher, whose next scan rebuilds it from the content), otherwise
        (web workers) the old one is read until the new one exists. Returns
        what happened, for people, or None.
        """
        path = self._backend.path
        if path is None:
            return None
        self._identity_checked = time.monotonic()
        current = _file_identity(path)
        if current == self._identity or (current is None and not create):
            return None
        what = "was deleted" if current is None else "was replaced by another file"
        try:
            before = self._read_generation()  # still readable: our connections hold the old file
        except StoreError:
            before = None
        self._engine.dispose()
        self._states = None
        if current is None:
            # A new file must not pick up the deleted one's write-ahead log.
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        with self._errors("reopen the store"):
            self._ensure_schema()
            if create and before is not None:
                # Feeds and ETags are cached by generation: never reuse a number.
                with self._connect(self._backend.write_options) as conn, conn.begin():
                    value = conn.execute(self._generation_q).scalar_one()
                    if int(value) <= before:
                        conn.execute(
                            sa.update(s.meta)
                            .where(s.meta.c.key == "generation")
                            .values(value=str(before + 1))
                        )
        self._identity = _file_identity(path)
        rebuilt = "; a new store is rebuilt from the content" if current is None else ""
        return f"the store file {what} while feedsvc ran: reopened it{rebuilt}"

    def _notice_replaced(self) -> None:
        """In a reading process, at most once a second: follow a replaced store file."""
        if self._backend.path is None:
            return
        if time.monotonic() - self._identity_checked < _IDENTITY_RECHECK_SECONDS:
            return
        happened = self.reopen_if_replaced(create=False)
        if happened is not None:
            log.warning("%s", happened)

    def ping(self) -> None:
        with self._errors("reach the store"), self._connect(self._backend.single_options) as c:
            c.execute(sa.text("SELECT 1")).scalar_one()

    def close(self) -> None:
        self._engine.dispose()
        for engine in self._backend.extra_engines:
            engine.dispose()

    def after_fork(self) -> None:
        """In a forked child: forget the parent's pooled connections without closing them."""
        self._engine.dispose(close=False)

    # -- reads --

    def generation(self) -> int:
        # Called on every feed request: a raw pooled cursor skips the ~90 µs
        # of Core execution overhead (the SQL itself was compiled by Core).
        self._notice_replaced()
        return self._read_generation()

    def _read_generation(self) -> int:
        with self._errors("read the generation"):
            conn = self._engine.raw_connection()
            try:
                value = self._backend.fast_scalar(conn, self._generation_sql)
            except self._dbapi_error as exc:
                # Core would notice a dropped server itself; on this raw path
                # we do it: drop every pooled connection, so a restarted
                # database costs one failed call, not one per connection.
                if self._engine.dialect.is_disconnect(cast(Any, exc), conn.dbapi_connection, None):
                    conn.invalidate(exc)
                    self._engine.dispose()
                raise
            finally:
                conn.close()
        if value is None:
            raise StoreError(f"{self._backend.name} store: the generation row is missing")
        return int(value)

    def settings_digest(self) -> str | None:
        q = sa.select(s.meta.c.value).where(s.meta.c.key == "settings_digest")
        return self._single("read the settings digest", lambda c: c.execute(q).scalar_one_or_none())

    def files(self, paths: Collection[str] | None = None) -> Mapping[str, StoredFile]:
        if paths is None:
            rows = self._single("read files", lambda c: c.execute(sa.select(s.files)).all())
            return {row.path: s.load_file(row) for row in rows}
        found: dict[str, StoredFile] = {}
        with self._errors("read files"), self._connect(self._backend.single_options) as conn:
            for chunk in _chunks(sorted(paths)):
                q = sa.select(s.files).where(s.files.c.path.in_(chunk))
                found.update((row.path, s.load_file(row)) for row in conn.execute(q))
        return found

    def file_states(self) -> Mapping[str, FileState]:
        # Every rescan reads this for every file. Each writing transaction puts
        # a new random files stamp in meta, so a process keeps the last states
        # it read with their stamp: a rescan after nothing was written reads one
        # meta row instead of every file row (at 50,000 files, 0.1-0.3 s). The
        # stamp and the rows come from one snapshot, so they always agree.
        stamp_q = sa.select(s.meta.c.value).where(s.meta.c.key == s.FILES_STAMP_KEY)
        with self._errors("read files"), self._connect(self._backend.snapshot_options) as conn:
            stamp = conn.execute(stamp_q).scalar_one_or_none()
            cached = self._states
            if stamp is not None and cached is not None and cached[0] == stamp:
                return cached[1]
            rows = _file_state_rows(conn)
        states = {
            path: FileState(size, mtime, item_id, error)
            for path, size, mtime, item_id, error in rows
        }
        self._states = None if stamp is None else (stamp, MappingProxyType(states))
        return states

    def item_sources(self, item_ids: Collection[str]) -> Mapping[str, str]:
        i = s.items
        found: dict[str, str] = {}
        with self._errors("read item sources"), self._connect(self._backend.single_options) as c:
            for chunk in _chunks(sorted(item_ids)):
                q = sa.select(i.c.id, i.c.source_path).where(i.c.id.in_(chunk))
                found.update((row.id, row.source_path) for row in c.execute(q))
        return found

    def item_hashes(self, item_ids: Collection[str]) -> Mapping[str, str]:
        found: dict[str, str] = {}
        with self._errors("read item hashes"), self._connect(self._backend.single_options) as conn:
            found.update(_stored_hashes(conn, sorted(item_ids)))
        return found

    def item(self, item_id: str, *, listed: bool = False) -> Item | None:
        q = sa.select(s.items.c.data).where(s.items.c.id == item_id)
        if listed:
            q = q.where(s.items.c.draft == sa.false())
        data = self._single("read an item", lambda c: c.execute(q).scalar_one_or_none())
        return None if data is None else s.load_item(data)

    def items_for(self, key: FeedKey, limit: int) -> tuple[Item, ...]:
        if limit <= 0:
            return ()
        q = _feed_query(key).limit(limit)
        rows = self._single("read a feed", lambda c: c.execute(q).scalars().all())
        return tuple(s.load_item(data) for data in rows)

    def feeds(self) -> tuple[FeedInfo, ...]:
        i, c = s.items, s.item_categories
        # Grouped by draft rather than filtered on it: the GROUP BY columns
        # then lead a covering index, so each query is one ordered index scan
        # (with WHERE draft = 0 SQLite picks the feed index and visits rows).
        by_lang = sa.select(i.c.language, i.c.draft, sa.func.count())
        by_cat = sa.select(c.c.slug, c.c.name, c.c.language, c.c.draft, sa.func.count())
        by_lang = by_lang.group_by(i.c.language, i.c.draft)
        by_cat = by_cat.group_by(c.c.slug, c.c.name, c.c.language, c.c.draft)
        # One snapshot, so the two queries' counts agree.
        with self._errors("list feeds"), self._connect(self._backend.snapshot_options) as conn:
            langs = [(lang, n) for lang, draft, n in conn.execute(by_lang) if not draft]
            cats = [
                (slug, name, lang, n)
                for slug, name, lang, draft, n in conn.execute(by_cat)
                if not draft
            ]
        return s.feed_infos(langs, cats)

    def term_feeds(self, facet: str) -> tuple[FeedInfo, ...]:
        t = s.item_terms
        q = (
            sa.select(t.c.slug, t.c.name, t.c.language, t.c.draft, sa.func.count())
            .where(t.c.facet == facet)
            .group_by(t.c.slug, t.c.name, t.c.language, t.c.draft)
        )
        rows = self._single("list tag and author feeds", lambda c: c.execute(q).all())
        cats = [(slug, name, lang, n) for slug, name, lang, draft, n in rows if not draft]
        return s.term_infos(facet, cats)

    def known_feed(self, key: FeedKey) -> FeedInfo | None:
        k = s.known_feeds
        q = sa.select(k.c.name).where(
            k.c.facet == key.facet, k.c.language == key.language, k.c.slug == key.category
        )
        name = self._single("read a known feed", lambda c: c.execute(q).scalar_one_or_none())
        if name is None:
            return None
        return FeedInfo(key=key, item_count=0, category_name=name or None)

    def known_feeds(self) -> tuple[FeedKey, ...]:
        k = s.known_feeds
        q = sa.select(k.c.facet, k.c.language, k.c.slug).order_by(k.c.facet, k.c.language, k.c.slug)
        rows = self._single("list known feeds", lambda c: c.execute(q).all())
        return tuple(
            FeedKey(language=lang, category=slug, facet=facet) for facet, lang, slug in rows
        )

    def last_scan(self) -> ScanState | None:
        q = sa.select(s.scan_state.c.report, s.scan_state.c.finished_at).where(
            s.scan_state.c.id == 1
        )
        count = sa.select(s.meta.c.value).where(s.meta.c.key == s.SCANS_KEY).scalar_subquery()
        q = q.add_columns(count.label("scans_total"))
        row = self._single("read the last scan", lambda c: c.execute(q).first())
        if row is None:
            return None
        return ScanState(
            report=s.load_report(row.report),
            finished_at=s.load_dt(row.finished_at),
            scans_total=int(row.scans_total or 0),
        )

    # -- writes --

    def apply(self, changes: ScanChanges, now: datetime | None = None) -> int:
        with self.scan_writer(now) as writer:
            return writer.commit(changes)

    @contextmanager
    def scan_writer(self, now: datetime | None = None) -> Iterator[_SqlScanWriter]:
        writer = _SqlScanWriter(self, now)
        try:
            yield writer
        finally:
            writer.close()  # rolls back unless commit() ran

    def _apply_in(
        self, conn: sa.Connection, changes: ScanChanges, touched: int, now: datetime | None
    ) -> int:
        """The body of a scan's transaction, after any staged chunks; ``touched``:
        items those chunks changed."""
        touched += _delete_removed(conn, changes)
        _delete_in(conn, s.files, s.files.c.path, changes.removed_paths)
        _write_files(conn, self._backend, changes.files)
        touched += _write_items(conn, self._backend, changes.items, now)
        if now is not None:  # what the timer may not have done yet (a watcher was down)
            touched += timed.release(conn, self._backend, now)
        digest_q = sa.select(s.meta.c.value).where(s.meta.c.key == "settings_digest")
        if changes.settings_digest not in (None, conn.execute(digest_q).scalar()):
            conn.execute(
                self._backend.upsert(s.meta, ["key"]),
                {"key": "settings_digest", "value": changes.settings_digest},
            )
        if touched:
            return _bump_generation(conn)
        return int(conn.execute(self._generation_q).scalar_one())

    def release(self, now: datetime) -> int:
        # A read first: with nothing due (nearly always) no write lock is taken.
        if self._single("read the schedule", lambda c: timed.due(c, now)) == ([], []):
            return self.generation()
        with self._write("release scheduled items") as conn:
            if timed.release(conn, self._backend, now):
                return _bump_generation(conn)
            return int(conn.execute(self._generation_q).scalar_one())

    def next_change(self, now: datetime) -> datetime | None:
        return self._single("read the schedule", lambda c: timed.next_change(c, now))

    def scheduled(self) -> tuple[ScheduledItem, ...]:
        return self._single("read the schedule", timed.scheduled)

    def item_counts(self, now: datetime) -> ItemCounts:
        # Every scan reports these: the per-flag counts walk every item, so they
        # are kept for the generation they were read at (flags move only with it).
        with self._errors("count items"), self._connect(self._backend.snapshot_options) as conn:
            generation = int(conn.execute(self._generation_q).scalar_one())
            cached = self._flag_counts
            if cached is None or cached[0] != generation:
                cached = (generation, timed.flag_counts(conn))
                self._flag_counts = cached
            return timed.counts(conn, now, cached[1])

    def record_scan(self, state: ScanState) -> None:
        row = {
            "id": 1,
            "report": s.dump_report(state.report),
            "finished_at": s.dump_dt(state.finished_at),
        }
        with self._write("record a scan") as conn:
            conn.execute(self._backend.upsert(s.scan_state, ["id"]), row)
            conn.execute(sa.delete(s.meta).where(s.meta.c.key == s.FAILURE_KEY))
            count = conn.execute(
                sa.select(s.meta.c.value).where(s.meta.c.key == s.SCANS_KEY)
            ).scalar_one_or_none()
            conn.execute(
                self._backend.upsert(s.meta, ["key"]),
                {"key": s.SCANS_KEY, "value": str(int(count or 0) + 1)},
            )

    def record_failure(self, failure: ScanFailure) -> None:
        row = {"key": s.FAILURE_KEY, "value": s.dump_failure(failure)}
        with self._write("record a failed scan") as conn:
            conn.execute(self._backend.upsert(s.meta, ["key"]), row)

    def last_failure(self) -> ScanFailure | None:
        q = sa.select(s.meta.c.value).where(s.meta.c.key == s.FAILURE_KEY)
        text = self._single("read the last failure", lambda c: c.execute(q).scalar_one_or_none())
        return None if text is None else s.load_failure(text)

    def record_file_events(self, state: FileEventsState) -> None:
        row = {"key": s.FILE_EVENTS_KEY, "value": s.dump_file_events(state)}
        with self._write("record the file events state") as conn:
            conn.execute(self._backend.upsert(s.meta, ["key"]), row)

    def file_events(self) -> FileEventsState | None:
        q = sa.select(s.meta.c.value).where(s.meta.c.key == s.FILE_EVENTS_KEY)
        text = self._single(
            "read the file events state", lambda c: c.execute(q).scalar_one_or_none()
        )
        return None if text is None else s.load_file_events(text)

    def record_health(self, role: str, text: str) -> None:
        row = {"key": f"{s.HEALTH_KEY_PREFIX}{role}", "value": text}
        with self._write("record health") as conn:
            conn.execute(self._backend.upsert(s.meta, ["key"]), row)

    def health(self, role: str) -> str | None:
        q = sa.select(s.meta.c.value).where(s.meta.c.key == f"{s.HEALTH_KEY_PREFIX}{role}")
        return self._single("read health", lambda c: c.execute(q).scalar_one_or_none())

    @contextmanager
    def scan_lock(self, wait: bool = True) -> Iterator[bool]:
        with ExitStack() as stack:
            # Only acquiring is a store operation; errors from the caller's
            # block pass through untouched.
            with self._errors("take the scan lock"):
                held = stack.enter_context(self._backend.scan_lock(wait))
            yield held

    # -- plumbing --

    @contextmanager
    def _connect(self, options: Options) -> Iterator[sa.Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(**options)
            yield conn

    @contextmanager
    def _write(self, doing: str) -> Iterator[sa.Connection]:
        with (
            self._errors(doing),
            self._connect(self._backend.write_options) as conn,
            conn.begin(),
        ):
            yield conn

    def _single(self, doing: str, run: Callable[[sa.Connection], T]) -> T:
        with self._errors(doing), self._connect(self._backend.single_options) as conn:
            return run(conn)

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (sa.exc.SQLAlchemyError, self._dbapi_error, OSError) as exc:
            if _needs_new_connections(exc):
                # SQLite keeps failing on connections opened before a read-only
                # or full episode ended: the next call opens new ones.
                self._engine.dispose()
            raise StoreError(
                f"{self._backend.name} store: cannot {doing}: {_reason(exc, self._password)}"
            ) from exc


class _SqlScanWriter:
    """``ScanWriter`` on one pooled connection and one write transaction.

    The connection and the transaction are taken by the first chunk that
    writes anything (SQLite: ``BEGIN IMMEDIATE``, the write lock, held until
    ``commit``; readers in WAL mode keep reading the last commit meanwhile).
    """

    def __init__(self, store: SqlStore, now: datetime | None) -> None:
        self._store = store
        self._now = now
        self._stack = ExitStack()
        self._conn: sa.Connection | None = None
        self._tx: sa.RootTransaction | None = None
        self._touched = 0
        self._done = False
        # The file states this process had cached when the transaction began,
        # if they were current, and what this transaction changes in them:
        # after the commit the cache moves forward instead of being re-read.
        self._base: Mapping[str, FileState] | None = None
        self._stamp = ""
        self._updates: dict[str, FileState | None] = {}
        self._files_changed = False

    def _open(self) -> sa.Connection:
        if self._done:
            raise RuntimeError("this scan was already committed")
        if self._conn is None:
            store = self._store
            conn = self._stack.enter_context(store._connect(store._backend.write_options))
            self._tx = conn.begin()
            self._conn = conn
            stamp_q = sa.select(s.meta.c.value).where(s.meta.c.key == s.FILES_STAMP_KEY)
            before = conn.execute(stamp_q).scalar_one_or_none()
            cached = store._states
            if before is not None and cached is not None and cached[0] == before:
                self._base = cached[1]
        return self._conn

    def stage(self, files: Sequence[StoredFile], items: Sequence[Item]) -> None:
        if not files and not items:
            return
        with self._store._errors("apply a scan"):
            conn = self._open()
            _write_files(conn, self._store._backend, files)
            self._touched += _write_items(conn, self._store._backend, items, self._now)
        self._note(files, ())

    def commit(self, changes: ScanChanges) -> int:
        if self._conn is None and changes.empty:
            # Nothing to do must mean nothing written: no write lock, no
            # UPDATE, so feeds and their ETags cannot move; unless items fell
            # due by now (docs/dates.md), which the release then moves.
            self._done = True
            if self._now is not None:
                return self._store.release(self._now)
            return self._store.generation()
        with self._store._errors("apply a scan"):
            conn = self._open()
            generation = self._store._apply_in(conn, changes, self._touched, self._now)
            self._note(changes.files, changes.removed_paths)
            if self._files_changed:
                # Every process's cached file states stop matching the store
                # once this commits (file_states reads the stamp first).
                self._stamp = secrets.token_hex(8)
                row = {"key": s.FILES_STAMP_KEY, "value": self._stamp}
                conn.execute(self._store._backend.upsert(s.meta, ["key"]), row)
            assert self._tx is not None
            self._tx.commit()
        self._done = True
        if self._files_changed and self._base is not None:
            states = dict(self._base)
            for path, state in self._updates.items():
                if state is None:
                    states.pop(path, None)
                else:
                    states[path] = state
            self._store._states = (self._stamp, MappingProxyType(states))
        return generation

    def _note(self, files: Sequence[StoredFile], removed: Sequence[str]) -> None:
        self._files_changed = self._files_changed or bool(files) or bool(removed)
        if self._base is None:
            return
        for f in files:
            self._updates[f.path] = FileState(f.size, f.mtime_ns, f.item_id, f.error)
        for path in removed:
            self._updates[path] = None

    def close(self) -> None:
        """Roll back whatever was staged and not committed; give the connection back."""
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        finally:
            self._stack.close()
            self._conn = self._tx = None
            self._done = True


# --- queries -------------------------------------------------------------------------------


def _feed_query(key: FeedKey) -> sa.Select[str]:
    """Non-draft items of one feed, newest first, ties by id: index order, no sort."""
    i, c = s.items, s.item_categories
    if key.facet != FACET_CATEGORY:
        t = s.item_terms
        q = (
            sa.select(i.c.data)
            .select_from(t.join(i, i.c.id == t.c.item_id))
            .where(t.c.facet == key.facet, t.c.slug == key.category, t.c.draft == sa.false())
        )
        if key.language != ALL:
            q = q.where(t.c.language == key.language)
        return q.order_by(t.c.published_key.desc(), t.c.item_id)
    if key.category == "all":
        q = sa.select(i.c.data).where(i.c.draft == sa.false())
        if key.language != "all":
            q = q.where(i.c.language == key.language)
        return q.order_by(i.c.published_key.desc(), i.c.id)
    q = (
        sa.select(i.c.data)
        .select_from(c.join(i, i.c.id == c.c.item_id))
        .where(c.c.slug == key.category, c.c.draft == sa.false())
    )
    if key.language != "all":
        q = q.where(c.c.language == key.language)
    return q.order_by(c.c.published_key.desc(), c.c.item_id)


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _delete_in(
    conn: sa.Connection, table: sa.Table, col: sa.Column[Any], keys: Sequence[str]
) -> int:
    deleted = 0
    for chunk in _chunks(keys):
        deleted += conn.execute(sa.delete(table).where(col.in_(chunk))).rowcount
    return deleted


def _delete_removed(conn: sa.Connection, changes: ScanChanges) -> int:
    """Delete the items of removed files and the removed ids; return items deleted."""
    i, c, t = s.items, s.item_categories, s.item_terms
    deleted = 0
    for chunk in _chunks(changes.removed_paths):
        of_paths = sa.select(i.c.id).where(i.c.source_path.in_(chunk))
        conn.execute(sa.delete(c).where(c.c.item_id.in_(of_paths)))
        conn.execute(sa.delete(t).where(t.c.item_id.in_(of_paths)))
        deleted += conn.execute(sa.delete(i).where(i.c.source_path.in_(chunk))).rowcount
    _delete_in(conn, c, c.c.item_id, changes.removed_items)
    _delete_in(conn, t, t.c.item_id, changes.removed_items)
    deleted += _delete_in(conn, i, i.c.id, changes.removed_items)
    return deleted


def _file_state_rows(conn: sa.Connection) -> list[tuple[str, int, int, str | None, str | None]]:
    """Every file's fingerprint straight from the driver's cursor.

    SQLAlchemy's Row objects cost three times the driver's own fetch here
    (0.17 s against 0.055 s for 50,000 rows), and every rescan reads them all.
    """
    f = s.files
    query = sa.select(f.c.path, f.c.size, f.c.mtime_ns, f.c.item_id, f.c.error)
    sql = str(query.compile(dialect=conn.dialect))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return cast("list[tuple[str, int, int, str | None, str | None]]", rows)


def _write_files(conn: sa.Connection, backend: Backend, files: Sequence[StoredFile]) -> None:
    if files:
        conn.execute(backend.upsert(s.files, ["path"]), [s.file_row(f) for f in files])


def _stored_hashes(conn: sa.Connection, item_ids: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(id, content_hash) of those of ``item_ids`` that are stored, in chunks."""
    i = s.items
    for chunk in _chunks(item_ids):
        q = sa.select(i.c.id, i.c.content_hash).where(i.c.id.in_(chunk))
        yield from ((row[0], row[1]) for row in conn.execute(q))


def _bump_generation(conn: sa.Connection) -> int:
    bump = (
        sa.update(s.meta)
        .where(s.meta.c.key == "generation")
        .values(value=sa.cast(sa.cast(s.meta.c.value, sa.BigInteger) + 1, sa.Text))
        .returning(s.meta.c.value)
    )
    return int(conn.execute(bump).scalar_one())


def _write_items(
    conn: sa.Connection, backend: Backend, items: Sequence[Item], now: datetime | None
) -> int:
    """Upsert the items whose content hash differs from the stored one; return how many.

    ``now``: the moment their listing is judged at (scheduled, expired:
    ``feedsvc.dates.is_listed``); None lists every item that is not a draft.

    Hashes are compared before encoding: re-applying 50,000 unchanged items
    costs one indexed read, not 50,000 JSON encodings. (A failed encoding
    rolls the whole scan back like any other error.)
    """
    latest = {item.id: item for item in items}  # a repeated id: the last one wins
    stored = dict(_stored_hashes(conn, list(latest)))
    changed: list[tuple[dict[str, Any], Item]] = []
    for item in latest.values():
        if item.content_hash and stored.get(item.id) == item.content_hash:
            continue
        row = s.item_row(item, listed=timed.listed_now(item, now))
        if stored.get(item.id) != row["content_hash"]:
            changed.append((row, item))
    if not changed:
        return 0
    conn.execute(backend.upsert(s.items, ["id"]), [row for row, _ in changed])
    c, t = s.item_categories, s.item_terms
    ids = [item.id for _, item in changed]
    _delete_in(conn, c, c.c.item_id, ids)
    _delete_in(conn, t, t.c.item_id, ids)
    cat_rows = [cat for row, item in changed for cat in s.category_rows(item, row)]
    if cat_rows:
        conn.execute(sa.insert(c), cat_rows)
    term_rows = [term for row, item in changed for term in s.term_rows(item, row)]
    if term_rows:
        conn.execute(sa.insert(t), term_rows)
    timed.write_schedule(conn, [item for _, item in changed], now)
    # Insert-if-missing, not upsert: nearly every key is known already, and a
    # conflict that writes nothing is the cheap case (the name kept is the first
    # seen; feeds with items take their names from the items).
    # An item kept out of the feeds (scheduled) puts no feed on the map yet.
    known = {
        (k["facet"], k["language"], k["slug"]): k
        for row, item in changed
        if not row["draft"]
        for k in s.known_feed_rows(item)
    }
    if known:
        insert = backend.insert(s.known_feeds).on_conflict_do_nothing()
        conn.execute(insert, list(known.values()))
    return len(changed)


_IDENTITY_RECHECK_SECONDS = 1.0
# Errors after which a connection stays broken though the cause is gone.
_REOPEN_ON = ("readonly database", "disk is full", "disk I/O error", "no such table")


def _needs_new_connections(exc: BaseException) -> bool:
    text = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc)
    return any(words in text for words in _REOPEN_ON)


def _file_identity(path: Path | None) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the store's file, or None if it is not there."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _reason(exc: BaseException, password: str | None) -> str:
    """A short, safe reason: the driver's first line, never a password or the URL."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if isinstance(orig, OSError) and orig.strerror:
        text = orig.strerror
    else:
        lines = str(orig).strip().splitlines()
        text = lines[0].strip() if lines else type(orig).__name__
    if password:
        text = text.replace(password, "***")
    return text[:200]
