"""SqlStore: the ``Store`` interfaces on SQLite and PostgreSQL; owns the reads, not a scan's writes.

Dialect-neutral: every SQLite/PostgreSQL difference is in ``backend.py``.
Connections, error wrapping and healing are ``engine.py``'s; a scan's one
transaction is ``writes.py``'s; the file-states cache is ``file_states.py``'s;
the clock's side of the items is ``timed.py``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from datetime import datetime

import sqlalchemy as sa

from feedsvc.errors import StoreError
from feedsvc.store import codec, records, timed, writes
from feedsvc.store import schema as s
from feedsvc.store.engine import Connections
from feedsvc.store.file_states import FileStates
from feedsvc.store.hub import HubStore
from feedsvc.types import (
    ALL,
    FACET_CATEGORY,
    FeedInfo,
    FeedKey,
    FileEventsState,
    FileState,
    Item,
    ItemCounts,
    ScanFailure,
    ScanState,
    ScheduledItem,
    StoredFile,
)

log = logging.getLogger(__name__)

# A meta row of a store file made afresh after the old one was deleted, removed
# when its first scan is recorded: until then web workers serve the old file
# (docs/operations.md, "The store heals").
REBUILDING_KEY = "rebuilding"


class SqlStore:
    """The store on SQLite (``sqlite:///path``) or PostgreSQL (``postgresql://...``).

    One instance is shared by threads: every call checks a connection out of
    the engine's pool and returns it. Opening creates the schema if missing.
    """

    def __init__(self, url: str) -> None:
        self._db = Connections(url)
        self._backend = self._db.backend
        self._generation_sql = str(
            s.meta_value(s.GENERATION_KEY).compile(
                self._db.engine, compile_kwargs={"literal_binds": True}
            )
        )
        self._file_states = FileStates()
        # (generation, timed.flag_counts) of the last item_counts.
        self._flag_counts: tuple[int, tuple[int, int, int]] | None = None
        self._hub: HubStore | None = None
        try:
            self._ensure_schema()
        except BaseException:
            self.close()
            raise
        self._db.remember_file()

    # -- lifecycle --

    def _ensure_schema(self) -> None:
        with self._db.errors("open the store"):
            with self._db.connect(self._backend.single_options) as conn:
                if s.stored_version(conn) == s.SCHEMA_VERSION:
                    return
            with self._db.connect(self._backend.write_options) as conn, conn.begin():
                self._backend.setup_lock(conn)
                s.create(conn, self._backend.insert)

    def hub(self) -> HubStore:
        """The WebSub hub's tables on this store (created on first use)."""
        if self._hub is None:
            self._hub = HubStore(self._db)
        return self._hub

    def reopen_if_replaced(self, *, create: bool) -> str | None:
        """Notice a store file deleted or replaced under this process (docs/operations.md).

        The rule: connections to a file that is no longer the store's path are
        dropped, so nothing is written into a deleted file. A replaced file is
        used from now on; a deleted one is created afresh when ``create`` (the
        watcher, whose next scan rebuilds it from the content), otherwise
        (web workers) the old one is read until the new one exists and its
        rebuild is done. Returns what happened, for people, or None.
        """
        what = self._db.file_moved(create=create)
        if what is None:
            return None
        deleted = what == "was deleted"
        if not create and self._new_file_rebuilding():
            return None  # the old file's feeds until the new one has them: look again later
        try:
            before = self._read_generation()  # still readable: our connections hold the old file
        except StoreError:
            before = None
        self._db.drop_file_connections(deleted=deleted)
        self._file_states.forget()
        if create:
            self._take_new_file(above=before, rebuilding=deleted)
        else:
            self._ensure_schema()
        self._db.remember_file()
        rebuilt = "; a new store is rebuilt from the content" if deleted else ""
        return f"the store file {what} while feedsvc ran: reopened it{rebuilt}"

    def _take_new_file(self, *, above: int | None, rebuilding: bool) -> None:
        """Make the file now at the path this store, in one transaction, so that a
        web worker looking into it sees either no store yet or all of this.

        Feeds and ETags are cached by generation: the new file's starts above
        ``above``, the old file's. A file made afresh says ``REBUILDING_KEY``
        until its first scan is recorded; web workers keep the old file till then.
        """
        with self._db.write("reopen the store") as conn:
            self._backend.setup_lock(conn)
            s.create(conn, self._backend.insert)
            current = int(conn.execute(s.meta_value(s.GENERATION_KEY)).scalar_one())
            if above is not None and current <= above:
                self._put_meta(conn, s.GENERATION_KEY, str(above + 1))
            if rebuilding:
                self._put_meta(conn, REBUILDING_KEY, "1")

    def _new_file_rebuilding(self) -> bool:
        """Whether the file now at the path is not ready to serve: no store in it
        yet, or one whose rebuild (``_take_new_file``) has not recorded a scan."""
        try:
            with self._db.file_at_path("look into the new store file") as conn:
                if s.stored_version(conn) is None:
                    return True
                return conn.execute(s.meta_value(REBUILDING_KEY)).scalar_one_or_none() is not None
        except StoreError:
            return True  # being created or locked by its writer: look again later

    def ping(self) -> None:
        self._db.single("reach the store", lambda c: c.execute(sa.text("SELECT 1")).scalar_one())

    def close(self) -> None:
        self._db.close()

    # -- reads --

    def generation(self) -> int:
        # Called on every feed request: the raw pooled cursor of the hot path.
        if self._db.identity_check_due():
            # A reading process follows a replaced store file, at most once a second.
            happened = self.reopen_if_replaced(create=False)
            if happened is not None:
                log.warning("%s", happened)
        return self._read_generation()

    def _read_generation(self) -> int:
        value = self._db.fast_scalar("read the generation", self._generation_sql)
        if value is None:
            raise StoreError(f"{self._backend.name} store: the generation row is missing")
        return int(value)

    def settings_digest(self) -> str | None:
        return self._meta("read the settings digest", s.SETTINGS_DIGEST_KEY)

    def files(self, paths: Collection[str] | None = None) -> Mapping[str, StoredFile]:
        if paths is None:
            rows = self._db.single("read files", lambda c: c.execute(sa.select(s.files)).all())
            return {row.path: codec.load_file(row) for row in rows}
        found: dict[str, StoredFile] = {}
        with self._db.reading("read files") as conn:
            for chunk in s.chunks(sorted(paths)):
                q = sa.select(s.files).where(s.files.c.path.in_(chunk))
                found.update((row.path, codec.load_file(row)) for row in conn.execute(q))
        return found

    def file_states(self) -> Mapping[str, FileState]:
        # The stamp and the rows come from one snapshot, so they always agree.
        with self._db.snapshot("read files") as conn:
            return self._file_states.read(conn)

    def item_sources(self, item_ids: Collection[str]) -> Mapping[str, str]:
        i = s.items
        found: dict[str, str] = {}
        with self._db.reading("read item sources") as conn:
            for chunk in s.chunks(sorted(item_ids)):
                q = sa.select(i.c.id, i.c.source_path).where(i.c.id.in_(chunk))
                found.update((row.id, row.source_path) for row in conn.execute(q))
        return found

    def item_hashes(self, item_ids: Collection[str]) -> Mapping[str, str]:
        with self._db.reading("read item hashes") as conn:
            return dict(writes.stored_hashes(conn, sorted(item_ids)))

    def item(self, item_id: str, *, listed: bool = False) -> Item | None:
        q = sa.select(s.items.c.data).where(s.items.c.id == item_id)
        if listed:
            q = q.where(s.items.c.draft == sa.false())
        data = self._db.single("read an item", lambda c: c.execute(q).scalar_one_or_none())
        return None if data is None else codec.load_item(data)

    def items_for(self, key: FeedKey, limit: int) -> tuple[Item, ...]:
        if limit <= 0:
            return ()
        q = _feed_query(key).limit(limit)
        rows = self._db.single("read a feed", lambda c: c.execute(q).scalars().all())
        return tuple(codec.load_item(data) for data in rows)

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
        with self._db.snapshot("list feeds") as conn:
            langs = [(lang, n) for lang, draft, n in conn.execute(by_lang) if not draft]
            cats = [
                (slug, name, lang, n)
                for slug, name, lang, draft, n in conn.execute(by_cat)
                if not draft
            ]
        return codec.feed_infos(langs, cats)

    def term_feeds(self, facet: str) -> tuple[FeedInfo, ...]:
        t = s.item_terms
        q = (
            sa.select(t.c.slug, t.c.name, t.c.language, t.c.draft, sa.func.count())
            .where(t.c.facet == facet)
            .group_by(t.c.slug, t.c.name, t.c.language, t.c.draft)
        )
        rows = self._db.single("list tag and author feeds", lambda c: c.execute(q).all())
        cats = [(slug, name, lang, n) for slug, name, lang, draft, n in rows if not draft]
        return codec.term_infos(facet, cats)

    def known_feed(self, key: FeedKey) -> FeedInfo | None:
        k = s.known_feeds
        q = sa.select(k.c.name).where(
            k.c.facet == key.facet, k.c.language == key.language, k.c.slug == key.category
        )
        name = self._db.single("read a known feed", lambda c: c.execute(q).scalar_one_or_none())
        if name is None:
            return None
        return FeedInfo(key=key, item_count=0, category_name=name or None)

    def known_feeds(self) -> tuple[FeedKey, ...]:
        k = s.known_feeds
        q = sa.select(k.c.facet, k.c.language, k.c.slug).order_by(k.c.facet, k.c.language, k.c.slug)
        rows = self._db.single("list known feeds", lambda c: c.execute(q).all())
        return tuple(
            FeedKey(language=lang, category=slug, facet=facet) for facet, lang, slug in rows
        )

    def last_scan(self) -> ScanState | None:
        st = s.scan_state
        count = s.meta_value(s.SCANS_KEY).scalar_subquery()
        q = sa.select(st.c.report, st.c.finished_at, count.label("scans_total"))
        q = q.where(st.c.id == 1)
        row = self._db.single("read the last scan", lambda c: c.execute(q).first())
        if row is None:
            return None
        return ScanState(
            report=records.load_report(row.report),
            finished_at=codec.load_dt(row.finished_at),
            scans_total=int(row.scans_total or 0),
        )

    def last_failure(self) -> ScanFailure | None:
        text = self._meta("read the last failure", s.FAILURE_KEY)
        return None if text is None else records.load_failure(text)

    def file_events(self) -> FileEventsState | None:
        text = self._meta("read the file events state", s.FILE_EVENTS_KEY)
        return None if text is None else records.load_file_events(text)

    def health(self, role: str) -> str | None:
        return self._meta("read health", f"{s.HEALTH_KEY_PREFIX}{role}")

    def next_change(self, now: datetime) -> datetime | None:
        return self._db.single("read the schedule", lambda c: timed.next_change(c, now))

    def scheduled(self) -> tuple[ScheduledItem, ...]:
        return self._db.single("read the schedule", timed.scheduled)

    def item_counts(self, now: datetime) -> ItemCounts:
        # Every scan reports these: the per-flag counts walk every item, so they
        # are kept for the generation they were read at (flags move only with it).
        with self._db.snapshot("count items") as conn:
            generation = int(conn.execute(s.meta_value(s.GENERATION_KEY)).scalar_one())
            cached = self._flag_counts
            if cached is None or cached[0] != generation:
                cached = (generation, timed.flag_counts(conn))
                self._flag_counts = cached
            return timed.counts(conn, now, cached[1])

    # -- writes --

    @contextmanager
    def scan_writer(self, now: datetime | None = None) -> Iterator[writes.SqlScanWriter]:
        def idle() -> int:
            return self.generation() if now is None else self.release(now)

        writer = writes.SqlScanWriter(self._db, self._file_states, now, idle)
        try:
            yield writer
        finally:
            writer.close()  # rolls back unless commit() ran

    def release(self, now: datetime) -> int:
        # A read first: with nothing due (nearly always) no write lock is taken.
        if self._db.single("read the schedule", lambda c: timed.due(c, now)) == ([], []):
            return self.generation()
        with self._db.write("release scheduled items") as conn:
            if timed.release(conn, self._backend, now):
                return writes.bump_generation(conn)
            return int(conn.execute(s.meta_value(s.GENERATION_KEY)).scalar_one())

    def record_scan(self, state: ScanState) -> None:
        row = {
            "id": 1,
            "report": records.dump_report(state.report),
            "finished_at": codec.dump_dt(state.finished_at),
        }
        with self._db.write("record a scan") as conn:
            conn.execute(self._backend.upsert(s.scan_state, ["id"]), row)
            done = (s.FAILURE_KEY, REBUILDING_KEY)  # a rebuilt store is ready to serve
            conn.execute(sa.delete(s.meta).where(s.meta.c.key.in_(done)))
            count = conn.execute(s.meta_value(s.SCANS_KEY)).scalar_one_or_none()
            self._put_meta(conn, s.SCANS_KEY, str(int(count or 0) + 1))

    def record_failure(self, failure: ScanFailure) -> None:
        with self._db.write("record a failed scan") as conn:
            self._put_meta(conn, s.FAILURE_KEY, records.dump_failure(failure))

    def record_file_events(self, state: FileEventsState) -> None:
        with self._db.write("record the file events state") as conn:
            self._put_meta(conn, s.FILE_EVENTS_KEY, records.dump_file_events(state))

    def record_health(self, role: str, text: str) -> None:
        with self._db.write("record health") as conn:
            self._put_meta(conn, f"{s.HEALTH_KEY_PREFIX}{role}", text)

    @contextmanager
    def scan_lock(self, wait: bool = True) -> Iterator[bool]:
        with ExitStack() as stack:
            # Only acquiring is a store operation; errors from the caller's
            # block pass through untouched.
            with self._db.errors("take the scan lock"):
                held = stack.enter_context(self._backend.scan_lock(wait))
            yield held

    # -- meta rows --

    def _meta(self, doing: str, key: str) -> str | None:
        q = s.meta_value(key)
        return self._db.single(doing, lambda c: c.execute(q).scalar_one_or_none())

    def _put_meta(self, conn: sa.Connection, key: str, value: str) -> None:
        conn.execute(self._backend.upsert(s.meta, ["key"]), {"key": key, "value": value})


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
    if key.category == ALL:
        q = sa.select(i.c.data).where(i.c.draft == sa.false())
        if key.language != ALL:
            q = q.where(i.c.language == key.language)
        return q.order_by(i.c.published_key.desc(), i.c.id)
    q = (
        sa.select(i.c.data)
        .select_from(c.join(i, i.c.id == c.c.item_id))
        .where(c.c.slug == key.category, c.c.draft == sa.false())
    )
    if key.language != ALL:
        q = q.where(c.c.language == key.language)
    return q.order_by(c.c.published_key.desc(), c.c.item_id)
