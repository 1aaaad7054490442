"""The store contract (``feedsvc.store.Store``) on SQLite and PostgreSQL alike.

Every test takes ``store_url`` and so runs on both backends. Items and file
rows are built by hand here: the store must not care where they come from.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import feedsvc.store.file_states as file_states_module
import feedsvc.store.writes as writes_module
from feedsvc.errors import StoreError
from feedsvc.store import ScanChanges, ScanState, open_store
from feedsvc.store.sql import SqlStore
from feedsvc.types import (
    Category,
    FeedInfo,
    FeedKey,
    FileError,
    FileState,
    FileWarning,
    Item,
    ItemCounts,
    ScanReport,
    StoredFile,
)

KST = timezone(timedelta(hours=9))
IST = timezone(timedelta(hours=5, minutes=30))
T0 = datetime(2024, 11, 13, 15, 42, 35, 123456, tzinfo=KST)
ALL = FeedKey("all", "all")
NEWS = Category("News", "news")
SPORT = Category("Sport", "sport")


def make_item(  # noqa: PLR0913 - a test builder: each argument past the id is optional
    item_id: str,
    *,
    published: datetime = T0,
    language: str = "en",
    categories: tuple[Category, ...] = (NEWS,),
    draft: bool = False,
    source_path: str | None = None,
    title: str | None = None,
) -> Item:
    title = title or f"Title of {item_id}"
    return Item(
        id=item_id,
        guid=f"tag:news.example.com,2024:{item_id}",
        source_path=source_path or f"{item_id}.md",
        url=f"https://news.example.com/items/{item_id}",
        title=title,
        summary=f"Summary of {item_id}",
        content_html=f"<p>{title} — 본문</p>",
        content_text=f"{title} — 본문",
        language=language,
        categories=categories,
        tags=("a", "b"),
        image=None,
        authors=("Reporter",),
        published=published,
        updated=published + timedelta(minutes=1),
        draft=draft,
        # The hash covers the fields that vary in these tests.
        content_hash=f"{title}|{published.isoformat()}|{language}|{categories}|{draft}",
    )


def make_file(path: str, item_id: str | None = None, *, size: int = 10) -> StoredFile:
    return StoredFile(
        path=path,
        size=size,
        mtime_ns=1_731_480_155_123_456_789,
        file_hash=f"sha256:{path}:{size}",
        item_id=item_id,
        first_seen=T0,
        changed_at=T0 + timedelta(seconds=5),
    )


def apply(store: SqlStore, changes: ScanChanges) -> int:
    """A whole scan's changes through one scan writer, as the scanner hands them over."""
    with store.scan_writer() as writer:
        return writer.commit(changes)


def put(store: SqlStore, *items: Item) -> int:
    """Apply items with their file rows, as a scan would."""
    files = tuple(make_file(i.source_path, i.id) for i in items)
    return apply(store, ScanChanges(files=files, items=items))


def ids(items: tuple[Item, ...]) -> list[str]:
    return [i.id for i in items]


def snapshot(store: SqlStore) -> tuple[Any, ...]:
    """Everything a reader can see, for before/after comparisons."""
    everything = store.items_for(ALL, 10_000)
    return (
        store.generation(),
        dict(store.files()),
        [(i, i.published.isoformat()) for i in everything],
        store.feeds(),
        store.settings_digest(),
        store.item("draft"),
    )


@pytest.fixture
def store(store_url: str) -> Iterator[SqlStore]:
    s = SqlStore(store_url)
    try:
        yield s
    finally:
        s.close()


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


# --- items and feeds -----------------------------------------------------------------------


def test_open_store_gives_a_working_store(store_url: str) -> None:
    store = open_store(store_url)
    try:
        store.ping()
        assert store.generation() == 0
        assert store.feeds() == ()
        assert store.files() == {}
        assert store.last_scan() is None
        assert store.settings_digest() is None
    finally:
        store.close()


def test_items_for_is_newest_first_then_by_id_and_limited(store: SqlStore) -> None:
    put(
        store,
        make_item("b", published=T0),
        make_item("a", published=T0),  # same instant as b: id decides
        make_item("c", published=T0 - timedelta(days=1)),
        # Same instant as a/b written in another offset: sorted by UTC, not text.
        make_item("0", published=T0.astimezone(IST)),
        make_item("new", published=(T0 + timedelta(microseconds=1)).astimezone(UTC)),
    )
    assert ids(store.items_for(ALL, 50)) == ["new", "0", "a", "b", "c"]
    assert ids(store.items_for(ALL, 2)) == ["new", "0"]
    assert store.items_for(ALL, 0) == ()


def test_items_for_filters_by_language_and_category(store: SqlStore) -> None:
    put(
        store,
        make_item("ko-news", language="ko", categories=(NEWS,)),
        make_item("ko-both", language="ko", categories=(SPORT, NEWS), published=T0 - timedelta(1)),
        make_item("en-sport", language="en", categories=(SPORT,)),
    )
    assert ids(store.items_for(FeedKey("ko", "all"), 50)) == ["ko-news", "ko-both"]
    assert ids(store.items_for(FeedKey("all", "sport"), 50)) == ["en-sport", "ko-both"]
    assert ids(store.items_for(FeedKey("ko", "sport"), 50)) == ["ko-both"]
    assert ids(store.items_for(FeedKey("en", "news"), 50)) == []
    assert ids(store.items_for(FeedKey("fr", "all"), 50)) == []
    assert ids(store.items_for(FeedKey("all", "nope"), 50)) == []


def test_drafts_stay_out_of_feeds_but_item_finds_them(store: SqlStore) -> None:
    put(store, make_item("draft", draft=True, categories=(SPORT,)), make_item("live"))
    assert ids(store.items_for(ALL, 50)) == ["live"]
    assert ids(store.items_for(FeedKey("all", "sport"), 50)) == []
    assert [f.key for f in store.feeds()] == [
        ALL,
        FeedKey("all", "news"),
        FeedKey("en", "all"),
        FeedKey("en", "news"),
    ]
    draft = store.item("draft")
    assert draft is not None and draft.draft
    assert store.item("missing") is None


def test_feeds_lists_every_cell_with_full_counts_and_names(store: SqlStore) -> None:
    put(
        store,
        make_item("1", language="ko", categories=(NEWS, SPORT)),
        make_item("2", language="ko", categories=(Category("NEWS", "news"),)),
        make_item("3", language="en", categories=(NEWS,)),
        make_item("4", language="en", categories=(Category("Sports", "sport"),)),
        make_item("5", language="en", categories=(SPORT, Category("Sport dup", "sport"))),
        make_item("6", language="fr", categories=(), draft=True),
    )
    assert store.feeds() == (
        FeedInfo(FeedKey("all", "all"), 5),
        # "News" twice vs "NEWS" once: the most common name wins.
        FeedInfo(FeedKey("all", "news"), 3, "News"),
        # "Sport" (items 1, 5) vs "Sports" (item 4); "Sport dup" repeats a slug in
        # one item and counts once, under the item's first name for it.
        FeedInfo(FeedKey("all", "sport"), 3, "Sport"),
        FeedInfo(FeedKey("en", "all"), 3),
        FeedInfo(FeedKey("en", "news"), 1, "News"),
        FeedInfo(FeedKey("en", "sport"), 2, "Sport"),
        FeedInfo(FeedKey("ko", "all"), 2),
        FeedInfo(FeedKey("ko", "news"), 2, "News"),
        FeedInfo(FeedKey("ko", "sport"), 1, "Sport"),
    )


def test_feeds_breaks_name_ties_by_smallest_name(store: SqlStore) -> None:
    put(
        store,
        make_item("1", categories=(Category("beta", "b"),)),
        make_item("2", categories=(Category("Beta", "b"),)),
    )
    assert store.feeds()[1] == FeedInfo(FeedKey("all", "b"), 2, "Beta")


def test_item_and_dates_round_trip_exactly(store: SqlStore) -> None:
    item = replace(
        make_item("x", published=T0),
        updated=datetime(2024, 11, 13, 1, 2, 3, 999999, tzinfo=IST),
        image="https://news.example.com/a.jpg",
        tags=("한국", "news"),
        categories=(Category("News Today", "news-today"), Category("정치", "정치")),
        content_hash="h",
    )
    put(store, item)
    got = store.item("x")
    assert got == item
    assert got is not None
    # Equal datetimes may differ in offset: feeds print the offset, so check it.
    assert got.published.isoformat() == "2024-11-13T15:42:35.123456+09:00"
    assert got.updated.isoformat() == "2024-11-13T01:02:03.999999+05:30"
    assert isinstance(got.categories, tuple) and isinstance(got.tags, tuple)
    assert store.items_for(FeedKey("en", "정치"), 1) == (item,)
    stored = store.files()["x.md"]
    assert stored == make_file("x.md", "x")
    assert stored.first_seen.utcoffset() == timedelta(hours=9)
    assert stored.changed_at.isoformat() == "2024-11-13T15:42:40.123456+09:00"


# --- apply ---------------------------------------------------------------------------------


@pytest.fixture
def writes(store_url: str) -> Iterator[Callable[[], object]]:
    """A fingerprint of committed writes, read from outside the store.

    SQLite: ``PRAGMA data_version`` on a connection of its own (it moves when
    any *other* connection commits a change) plus the db and WAL file sizes.
    PostgreSQL: every row's xmin and ctid (an insert or update changes them).
    """
    if is_sqlite(store_url):
        db = Path(sa.make_url(store_url).database or "")
        watcher = sqlite3.connect(db)

        def sqlite_fingerprint() -> object:
            sizes = [p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists()]
            return watcher.execute("PRAGMA data_version").fetchone(), sizes

        yield sqlite_fingerprint
        watcher.close()
        return
    engine = sa.create_engine(store_url)

    def pg_fingerprint() -> object:
        with engine.connect() as conn:
            return [
                conn.execute(sa.text(f"SELECT xmin::text, ctid::text FROM {table}")).all()
                for table in ("meta", "files", "items", "item_categories", "scan_state")
            ]

    yield pg_fingerprint
    engine.dispose()


def test_empty_changes_write_nothing(store: SqlStore, writes: Callable[[], object]) -> None:
    generation = put(store, make_item("a"))
    statements: list[str] = []
    sa.event.listen(store._db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    before = writes()

    assert apply(store, ScanChanges()) == generation

    assert store.generation() == generation
    assert writes() == before
    assert not [q for q in statements if q.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
    assert not [q for q in statements if "IMMEDIATE" in q.upper()]
    put(store, make_item("b"))  # the control: a real write is seen
    assert writes() != before


def test_same_content_hash_is_not_rewritten(store: SqlStore, writes: Callable[[], object]) -> None:
    item = make_item("a")
    generation = put(store, item)
    assert generation == 1
    before = writes()
    # Same hash, different body: the store trusts the hash and writes no item.
    assert apply(store, ScanChanges(items=(replace(item, summary="other"),))) == generation
    assert store.item("a") == item
    assert writes() == before
    changed = make_item("a", title="New title")
    assert put(store, changed) == generation + 1
    assert store.item("a") == changed
    assert store.generation() == generation + 1


def test_item_without_content_hash_still_tracks_changes(store: SqlStore) -> None:
    item = replace(make_item("a"), content_hash="")
    assert put(store, item) == 1
    assert put(store, item) == 1
    assert put(store, replace(item, title="changed")) == 2


def test_file_only_changes_keep_the_generation(store: SqlStore) -> None:
    generation = put(store, make_item("a"))
    touched = replace(make_file("a.md", "a"), mtime_ns=5, error="bad YAML")
    assert apply(store, ScanChanges(files=(touched,))) == generation
    assert store.files()["a.md"] == touched


def test_removed_path_removes_its_file_and_items(store: SqlStore) -> None:
    put(store, make_item("a"), make_item("b", categories=(SPORT,)), make_item("c"))
    generation = store.generation()
    new = apply(store, ScanChanges(removed_paths=("b.md", "gone.md")))
    assert new == generation + 1
    assert set(store.files()) == {"a.md", "c.md"}
    assert store.item("b") is None
    assert [f.key.category for f in store.feeds()] == ["all", "news", "all", "news"]
    # Removing what is already gone changes nothing.
    assert apply(store, ScanChanges(removed_paths=("b.md",))) == new


def test_removed_items(store: SqlStore) -> None:
    put(store, make_item("a"), make_item("b"))
    generation = store.generation()
    assert apply(store, ScanChanges(removed_items=("a", "missing"))) == generation + 1
    assert ids(store.items_for(ALL, 50)) == ["b"]
    assert set(store.files()) == {"a.md", "b.md"}  # file rows are the scan's business


def test_item_moving_to_another_file(store: SqlStore) -> None:
    put(store, make_item("a", source_path="old.md"))
    moved = make_item("a", source_path="new.md")
    apply(
        store,
        ScanChanges(files=(make_file("new.md", "a"),), items=(moved,), removed_paths=("old.md",)),
    )
    assert store.item("a") == moved
    assert set(store.files()) == {"new.md"}


def test_settings_digest_round_trips_without_moving_generation(store: SqlStore) -> None:
    generation = put(store, make_item("a"))
    assert apply(store, ScanChanges(settings_digest="sha256:1")) == generation
    assert store.settings_digest() == "sha256:1"
    apply(store, ScanChanges(settings_digest="sha256:2"))
    assert store.settings_digest() == "sha256:2"


def test_failed_apply_leaves_the_store_as_it_was(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(store, make_item("a"), make_item("b"), make_item("draft", draft=True))
    apply(store, ScanChanges(settings_digest="d1"))
    before = snapshot(store)
    changes = ScanChanges(
        files=(make_file("a.md", "a", size=99), make_file("n.md", "n")),
        items=(make_item("a", title="changed"), make_item("n")),
        removed_paths=("b.md",),
        removed_items=("draft",),
        settings_digest="d2",
    )
    original = writes_module.write_items

    def write_then_fail(*args: Any) -> int:
        original(*args)  # deletes, file upserts and item writes have run by now
        raise RuntimeError("injected failure")

    monkeypatch.setattr(writes_module, "write_items", write_then_fail)
    with pytest.raises(RuntimeError, match="injected"):
        apply(store, changes)
    assert snapshot(store) == before
    monkeypatch.undo()

    # The database itself refuses a value midway (a lone surrogate cannot be encoded).
    bad = replace(changes, items=(make_item("n"), make_item("z", title="bad \ud800")))
    with pytest.raises(UnicodeEncodeError):
        apply(store, bad)
    assert snapshot(store) == before

    # A naive date is refused (a caller bug), and the scan rolled back.
    naive = replace(make_item("m"), published=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="naive"):
        apply(store, replace(changes, items=(make_item("n"), naive)))
    assert snapshot(store) == before

    apply(store, changes)  # and the same changes succeed afterwards
    assert snapshot(store) != before


def test_concurrent_applies_all_land(store: SqlStore) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for k in range(5):
                put(store, make_item(f"w{n}-{k}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.generation() == 20
    assert store.feeds()[0].item_count == 20


def test_many_items(store: SqlStore) -> None:
    langs = ("ko", "en", "ja")
    cats = tuple(Category(f"Cat {n}", f"cat-{n}") for n in range(7))
    items = tuple(
        make_item(
            f"i{n:05d}",
            published=T0 - timedelta(minutes=n // 2),
            language=langs[n % 3],
            categories=(cats[n % 7], cats[(n + 1) % 7]),
            draft=n % 100 == 0,
        )
        for n in range(5000)
    )
    assert put(store, *items) == 1
    live = [i for i in items if not i.draft]
    newest = sorted(live, key=lambda i: (-i.published.timestamp(), i.id))
    assert ids(store.items_for(ALL, 50)) == [i.id for i in newest[:50]]
    ko_cat3 = [i for i in newest if i.language == "ko" and cats[3] in i.categories]
    assert ids(store.items_for(FeedKey("ko", "cat-3"), 50)) == [i.id for i in ko_cat3[:50]]
    feeds = {f.key: f for f in store.feeds()}
    assert len(feeds) == 1 + 7 + 3 + 3 * 7
    assert feeds[ALL].item_count == len(live)
    assert feeds[FeedKey("ko", "cat-3")].item_count == len(ko_cat3)
    assert feeds[FeedKey("all", "cat-3")].category_name == "Cat 3"
    assert sum(feeds[FeedKey(lang, "all")].item_count for lang in langs) == len(live)
    assert put(store, *items) == 1  # nothing changed: no write
    assert apply(store, ScanChanges(removed_paths=tuple(f"{i.id}.md" for i in items))) == 2
    assert store.feeds() == ()


# --- scans and locks -----------------------------------------------------------------------


def test_record_scan_round_trips(store: SqlStore) -> None:
    assert store.last_scan() is None
    report = ScanReport(
        added=2,
        updated=1,
        removed=3,
        unchanged=40,
        errors=(FileError("bad.md", "front matter: bad YAML"), FileError("정치.txt", "empty")),
        duration_ms=125,
        started_at=T0,
        generation=7,
    )
    store.record_scan(ScanState(report=report, finished_at=T0 + timedelta(seconds=1)))
    store.record_scan(ScanState(report=report, finished_at=T0 + timedelta(seconds=2)))
    state = store.last_scan()
    assert state == ScanState(report=report, finished_at=T0 + timedelta(seconds=2), scans_total=2)
    assert state.finished_at.utcoffset() == timedelta(hours=9)
    assert state.report.started_at is not None
    assert state.report.started_at.isoformat() == T0.isoformat()
    assert store.generation() == 0  # a scan record is not content


def test_every_field_of_a_scan_report_round_trips(store: SqlStore) -> None:
    report = ScanReport(
        added=1,
        updated=2,
        removed=3,
        unchanged=4,
        errors=(FileError("bad.md", "bad YAML"),),
        warnings=(FileWarning("odd.md", "unreadable date skipped"),),
        duration_ms=5,
        started_at=T0,
        generation=6,
        pending=("half.md",),
        resources=7,
        skipped=8,
        documents=9,
        ignored=10,
        items=ItemCounts(listed=11, drafts=12, scheduled=13, expired=14),
    )
    store.record_scan(ScanState(report=report, finished_at=T0))
    state = store.last_scan()
    assert state is not None and state.report == report


def test_a_scan_report_recorded_by_an_earlier_version_still_reads(
    store: SqlStore, store_url: str
) -> None:
    # The layout earlier versions wrote: the API's JSON plus started_at and generation.
    earlier = {
        "counts": {"documents": 3, "items": 2, "drafts": 1, "not_items": 0, "failed": 1},
        "added": 2,
        "updated": 0,
        "removed": 0,
        "unchanged": 1,
        "errors": [{"path": "bad.md", "error": "bad YAML"}],
        "pending": [],
        "warnings": [],
        "duration_ms": 12,
        "resources": 0,
        "skipped": 0,
        "started_at": T0.isoformat(),
        "generation": 4,
    }
    store.record_scan(ScanState(report=ScanReport(), finished_at=T0))
    engine = sa.create_engine(store_url.replace("postgresql:", "postgresql+psycopg:", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE scan_state SET report = :r"), {"r": json.dumps(earlier)})
    engine.dispose()
    state = store.last_scan()
    assert state is not None
    assert state.report == ScanReport(
        added=2,
        unchanged=1,
        errors=(FileError("bad.md", "bad YAML"),),
        duration_ms=12,
        started_at=T0,
        generation=4,
        documents=3,
        items=ItemCounts(listed=2, drafts=1),
    )


def test_scan_lock_excludes_other_threads(store: SqlStore) -> None:
    held, release = threading.Event(), threading.Event()
    order: list[str] = []

    def holder() -> None:
        with store.scan_lock() as got:
            assert got
            held.set()
            release.wait(30)
            order.append("holder released")

    def waiter() -> None:
        with store.scan_lock(wait=True) as got:
            order.append(f"waiter got {got}")

    t1 = threading.Thread(target=holder)
    t1.start()
    assert held.wait(30)
    tries: list[bool] = []

    def try_once() -> None:
        with store.scan_lock(wait=False) as got:
            tries.append(got)

    t_try = threading.Thread(target=try_once)
    t_try.start()
    t_try.join()
    assert tries == [False]
    t2 = threading.Thread(target=waiter)
    t2.start()
    release.set()
    t1.join()
    t2.join()
    assert order == ["holder released", "waiter got True"]
    with store.scan_lock(wait=False) as got:
        assert got


_HOLD_LOCK = """
import sys
from feedsvc.store.sql import SqlStore
store = SqlStore(sys.argv[1])
with store.scan_lock() as held:
    print("held" if held else "not held", flush=True)
    sys.stdin.read()  # until the parent closes stdin (or kills us)
"""


@pytest.mark.timeout(120)
def test_scan_lock_across_processes_and_after_kill(store: SqlStore, store_url: str) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, store_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "held"
        with store.scan_lock(wait=False) as got:
            assert got is False
        child.kill()  # SIGKILL: no cleanup code runs in the holder
        child.wait()
    # PostgreSQL notices the dead session asynchronously: wait for it, no sleep.
    with store.scan_lock(wait=True) as got:
        assert got
    with store.scan_lock(wait=False) as got:
        assert got


def test_scan_lock_is_released_when_the_block_raises(store: SqlStore) -> None:
    with pytest.raises(KeyError), store.scan_lock() as got:
        assert got
        raise KeyError("boom")
    with store.scan_lock(wait=False) as got:
        assert got


_OPEN_AT = """
import sys, time
from feedsvc.store.sql import SqlStore
for at, url in zip(sys.argv[1::2], sys.argv[2::2]):
    time.sleep(max(0.0, float(at) - time.time()))
    store = SqlStore(url)
    print(store.generation(), flush=True)
    store.close()
"""


@pytest.mark.timeout(120)
def test_processes_opening_a_new_store_at_once_all_get_it(store_url: str, tmp_path: Path) -> None:
    # A server's workers and its watcher all open the store the moment they
    # start; on a new SQLite file one of them converts it to WAL meanwhile.
    if is_sqlite(store_url):
        urls = [f"sqlite:///{tmp_path / f'new-{n}.sqlite3'}" for n in range(12)]
    else:
        urls = [store_url]  # a fresh schema; PostgreSQL creates it once
    start = time.time() + 3.0  # after every child has imported feedsvc
    argv: list[str] = []
    for n, url in enumerate(urls):
        argv += [f"{start + n * 0.25:.3f}", url]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for child in children:
        out, err = child.communicate(timeout=100)
        assert child.returncode == 0, err
        assert out.split() == ["0"] * len(urls)


# --- lifecycle and errors ------------------------------------------------------------------


def test_reopening_sees_the_same_data(store_url: str) -> None:
    first = SqlStore(store_url)
    put(first, make_item("a"), make_item("draft", draft=True))
    apply(first, ScanChanges(settings_digest="d"))
    before = snapshot(first)
    first.close()
    second = SqlStore(store_url)
    try:
        assert snapshot(second) == before
        assert second.item("draft") is not None
    finally:
        second.close()


def test_newer_schema_version_is_refused(store_url: str) -> None:
    SqlStore(store_url).close()
    engine = sa.create_engine(store_url.replace("postgresql:", "postgresql+psycopg:", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE meta SET value = '99' WHERE key = 'schema_version'"))
    engine.dispose()
    with pytest.raises(StoreError, match="store schema version 99 is newer than this feedsvc"):
        SqlStore(store_url)


def test_unreachable_store_raises_a_safe_store_error(store_url: str, tmp_path: Path) -> None:
    if is_sqlite(store_url):
        (tmp_path / "a-file").write_text("x")
        bad = f"sqlite:///{tmp_path}/a-file/store.sqlite3"
    else:
        bad = "postgresql://feeds:s3cret-pw@127.0.0.1:1/test"
    with pytest.raises(StoreError) as caught:
        SqlStore(bad)
    message = str(caught.value)
    assert bad not in message
    assert "s3cret-pw" not in message
    assert caught.value.__cause__ is not None


def test_url_forms(store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if is_sqlite(store_url):
        # Relative to the working directory at open time, parents created.
        monkeypatch.chdir(tmp_path)
        url = "sqlite:///var/sub/feedsvc.sqlite3"
    else:
        # Plain postgresql:// still gets psycopg 3 (psycopg2 is not installed).
        url = store_url.replace("postgresql+psycopg://", "postgresql://", 1)
    store = SqlStore(url)
    try:
        put(store, make_item("a"))
        store.ping()
        if is_sqlite(store_url):
            monkeypatch.chdir("/")  # the store stays where it was opened
            assert store.item("a") is not None
            assert (tmp_path / "var" / "sub" / "feedsvc.sqlite3").is_file()
    finally:
        store.close()


_FORK_HOOKS = """
import os, sys
calls = []
register = os.register_at_fork
def counting(**hooks):
    # Only feedsvc's own hooks: the standard library registers some at import.
    calls.extend(h for h in hooks.values() if h.__module__.startswith("feedsvc"))
    register(**hooks)
os.register_at_fork = counting
import feedsvc.store.sql
from feedsvc.store import open_store
print(len(calls), flush=True)
first, second = open_store(sys.argv[1]), open_store(sys.argv[1])
print(len(calls), flush=True)
pid = os.fork()
if pid == 0:
    os._exit(0 if first.generation() == second.generation() == 0 else 2)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), flush=True)
first.close()
second.close()
"""


@pytest.mark.timeout(120)
def test_the_fork_hook_is_registered_once_by_opening_a_store_not_by_importing(
    store_url: str,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FORK_HOOKS, store_url],
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    # Importing registers nothing; two stores opened register one hook; the
    # forked child then reads through both on connections of its own.
    assert done.stdout.split() == ["0", "1", "0"]


def test_after_fork_the_child_uses_its_own_connections(store: SqlStore) -> None:
    put(store, make_item("a"))
    assert store.generation() == 1  # the parent's pool now holds a connection
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            code = 0 if store.generation() == 1 and store.item("a") is not None else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.generation() == 1 and store.item("a") is not None


@pytest.mark.postgres
def test_a_dropped_server_connection_costs_one_failed_call(pg_url: str) -> None:
    app = f"feedsvc-test-{uuid.uuid4().hex[:12]}"
    store = SqlStore(f"{pg_url}&application_name={app}")
    try:
        put(store, make_item("a"))
        # Two idle connections in the pool, as after concurrent requests.
        with store._db.engine.connect(), store._db.engine.connect():
            pass
        admin = sa.create_engine(os.environ["TEST_PG_URL"])
        with admin.connect() as conn:
            # The timeout argument waits until each backend has really exited.
            killed = conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity"
                    " WHERE application_name = :app"
                ),
                {"app": app},
            ).scalars()
            assert list(killed) == [True, True]
        admin.dispose()
        with pytest.raises(StoreError) as caught:
            store.generation()
        assert app not in str(caught.value)
        assert store.generation() == 1
        assert ids(store.items_for(ALL, 5)) == ["a"]
    finally:
        store.close()


def test_same_settings_digest_is_not_rewritten(
    store: SqlStore, writes: Callable[[], object]
) -> None:
    apply(store, ScanChanges(settings_digest="d"))
    before = writes()
    apply(store, ScanChanges(settings_digest="d"))
    assert writes() == before
    assert store.settings_digest() == "d"


def test_file_states_stay_right_across_processes_and_reads_are_cached(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each process keeps the file states it read; every files write elsewhere
    invalidates them, and its own writes carry them forward."""
    here, there = SqlStore(store_url), SqlStore(store_url)
    full_reads: list[int] = []
    read_rows = file_states_module._file_state_rows

    def counting(conn: sa.Connection) -> Any:
        full_reads.append(1)
        return read_rows(conn)

    monkeypatch.setattr(file_states_module, "_file_state_rows", counting)

    def reads_of_files() -> int:
        return len(full_reads)

    def fresh() -> dict[str, FileState]:
        other = SqlStore(store_url)
        try:
            # From the full rows: another path through the store than file_states.
            return {
                path: FileState(f.size, f.mtime_ns, f.item_id, f.error)
                for path, f in other.files().items()
            }
        finally:
            other.close()

    try:
        apply(there, ScanChanges(files=(make_file("x.md"),)))
        assert set(here.file_states()) == {"x.md"}
        assert set(here.file_states()) == {"x.md"}
        assert reads_of_files() == 1  # the second read came from the cache

        # Another process writes files: the cache is stale and read again.
        apply(there, ScanChanges(files=(make_file("y.md"),), removed_paths=("x.md",)))
        assert dict(here.file_states()) == fresh() and set(fresh()) == {"y.md"}
        assert reads_of_files() == 2

        # This process writes: its cache moves forward without a read.
        grown = make_file("y.md", size=99)
        put(here, make_item("z", source_path="z.md"))
        apply(here, ScanChanges(files=(grown,), removed_paths=("z.md",)))
        assert dict(here.file_states()) == fresh()
        assert here.file_states()["y.md"] == FileState(99, grown.mtime_ns, None, None)
        assert reads_of_files() == 2

        # Items alone leave the file states (and so the cache) as they are.
        apply(there, ScanChanges(items=(make_item("w", source_path="y.md"),)))
        assert dict(here.file_states()) == fresh()
        assert reads_of_files() == 2
    finally:
        here.close()
        there.close()
