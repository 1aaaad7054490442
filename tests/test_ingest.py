"""Ingest as a whole: every known library trap dropped into a real content folder.

Each hostile file must end as a clear error naming it and the reason, or as a
correct item; the scan completes; the sample items do not change; every feed
still parses. Also: two scans never run at once, and a file that turns bad
keeps its last good item.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest

from feedsvc.feed_cache import FeedCache
from feedsvc.pipeline import scan
from feedsvc.render import FORMATS
from feedsvc.scanner import Scanner
from feedsvc.store import ScanChanges, open_store

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# name -> (bytes, expected error words or None when a correct item is expected)
HOSTILE: dict[str, tuple[bytes, str | None]] = {
    "deep.md": (b"---\nx: " + b"[" * 25_000 + b"\n---\nbody\n", "YAML"),
    "laughs.md": (
        b"---\na: &a [x, x, x, x, x, x, x, x, x]\n"
        b"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        b"d: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n---\nx\n",
        "alias",
    ),
    "bom.md": ("\ufeff---\ntitle: With a BOM\nlang: en\n---\nBody text.\n".encode(), None),
    "cr-only.md": (b"---\rtitle: Old Mac line ends\rlang: en\r---\rBody one.\r\rBody two.\r", None),
    "unclosed.md": (b"---\ntitle: Half written\nlang: en\nbody never comes\n", "never closed"),
    "toml.md": (b'+++\ntitle = "TOML front matter"\nlang = "en"\n+++\nBody.\n', None),
    # An unreadable date is a warning, never a lost item (the next source dates it).
    "bad-date.md": (b"---\ntitle: Bad date\ndate: 2024-13-45\n---\nBody.\n", None),
    "odd-keys.md": (
        b"---\ntitle: Odd keys\non: yes\nnull: x\n2024: y\nlang: en\n---\nBody.\n",
        None,
    ),
    "json-first.md": (b'{"title": "not front matter"}\nJust text after it.\n', None),
    "coerce.md": (
        b"---\nid: 0123\nlang: no\ntime: 12:30:00\ntitle: [a, b]\ndate: 2024-05-06\n"
        b"categories: News Today\n---\nBody.\n",
        None,
    ),
    "nan.md": (
        b"---\ntitle: Not a number\nlang: en\nscore: .nan\nweight: .inf\n---\nBody.\n",
        None,
    ),
    "cp949.txt": (
        "date 2024-11-13 [World] TALKS RESUME\n\n"
        "입력 2024-11-13 09:00:00 수정 2024-11-13 09:05:00 News\n\n\n"
        "[LEAD]\n\nTalks resumed today in Seoul (서울) after a long pause.\n".encode("cp949"),
        None,
    ),
    "controls.html": (
        b"<h1>Control &#x0b;characters &#xFFFE;here</h1><p>Text \x0b with \x1f controls.</p>",
        None,
    ),
    "xss.html": (
        b"<h1>Scripted</h1><script>alert(1)</script><p onclick='x()'>Hi</p>"
        b"<a href='javascript:alert(1)'>a</a><a href='&#106;avascript:alert(1)'>b</a>"
        b"<iframe src='https://evil.example'></iframe><img src='data:image/png;base64,AAAA'>",
        None,
    ),
    "nested.html": (b"<h1>Nested</h1>" + b"<div>" * 40_000 + b"deep" + b"</div>" * 40_000, None),
    "no-title.html": (b"<p></p>", None),
    "empty.md": (b"", "empty"),
    "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4, "binary"),
    "cut-utf8.md": ("---\ntitle: 잘린 파일\n---\n본문".encode()[:-1], "truncated"),
}


@pytest.fixture
def scanned(content_dir: Path, make_settings, store_url: str):
    settings = make_settings(content_dir, store_url)
    store = open_store(settings.store.url)
    first = scan(settings, store, now=NOW)
    assert first.added == 2 and not first.errors
    before = {p: store.item(f.item_id) for p, f in store.files().items() if f.item_id}
    yield settings, store, before
    store.close()


def test_every_trap_is_an_error_or_an_item_and_nothing_else_moves(
    scanned, content_dir: Path
) -> None:
    settings, store, before = scanned
    for name, (data, _) in HOSTILE.items():
        (content_dir / name).write_bytes(data)
    os.symlink("/etc/passwd", content_dir / "passwd-link.txt")
    os.mkfifo(content_dir / "pipe.md")
    os.symlink(".", content_dir / "loop")
    (content_dir / os.fsdecode(b"caf\xe9.md")).write_bytes(b"# Cafe\n\nOdd file name.\n")

    report = scan(settings, store, now=NOW)

    errors = {e.path: e.error for e in report.errors}
    for name, (_, expected) in HOSTILE.items():
        if expected is None:
            assert name not in errors, (name, errors.get(name))
        else:
            assert name in errors, name
            assert expected.lower() in errors[name].lower(), (name, errors[name])
    assert "passwd-link.txt" in errors and "link" in errors["passwd-link.txt"]
    assert "pipe.md" not in errors or "regular" in errors["pipe.md"]
    for path, reason in errors.items():
        assert reason and "Traceback" not in reason and str(content_dir) not in reason, path

    # The samples are untouched.
    for path, item in before.items():
        assert store.item(item.id) == item, path

    items = {f.path: store.item(f.item_id) for f in store.files().values() if f.item_id}
    assert "caf\\xe9.md" in items
    coerce = items["coerce.md"]
    assert coerce.id == "0123" and coerce.language == "no" and coerce.title == "a, b"
    assert [c.slug for c in coerce.categories] == ["news-today"]
    assert coerce.published.isoformat() == "2024-05-06T00:00:00+09:00"
    assert items["bom.md"].title == "With a BOM"
    assert items["cr-only.md"].title == "Old Mac line ends"
    assert items["toml.md"].title == "TOML front matter"
    assert items["cp949.txt"].title == "TALKS RESUME"
    assert "서울" in items["cp949.txt"].summary
    assert (
        "\x0b" not in items["controls.html"].title and "\ufffe" not in items["controls.html"].title
    )
    xss = items["xss.html"].content_html
    for bad in ("<script", "onclick", "javascript:", "<iframe", "data:"):
        assert bad not in xss.lower(), bad
    assert items["no-title.html"].title == "no-title"
    assert not any("passwd" in (i.content_text or "") for i in items.values() if i)

    # Every feed in every format still parses.
    cache = FeedCache(settings, store)
    for info in cache.grid():
        for fmt in FORMATS:
            feed = cache.get(info.key, fmt.name)
            assert feed is not None
            if fmt.name == "json":
                json.loads(feed.body, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))
            else:
                assert not feedparser.parse(feed.body).bozo, (info.key, fmt.name)


def test_a_file_that_turns_bad_keeps_its_last_good_item(scanned, content_dir: Path) -> None:
    settings, store, before = scanned
    sample = content_dir / "000_a08af95bc486be6a.txt"
    good = before["000_a08af95bc486be6a.txt"]
    sample.write_bytes(sample.read_bytes()[:200])  # half-written: front matter never closed
    report = scan(settings, store, now=NOW)
    assert [e.path for e in report.errors] == ["000_a08af95bc486be6a.txt"]
    assert store.item(good.id) == good
    # Unchanged and still bad: still reported, still kept, nothing written.
    generation = store.generation()
    again = scan(settings, store, now=NOW)
    assert [e.path for e in again.errors] == ["000_a08af95bc486be6a.txt"]
    assert store.generation() == generation
    # Growing past the size cap keeps it too.
    sample.write_bytes(b"x" * (settings.content.max_file_bytes + 1))
    third = scan(settings, store, now=NOW)
    assert "max_file_bytes" in dict((e.path, e.error) for e in third.errors)[sample.name]
    assert store.item(good.id) == good


def test_deleted_files_leave_and_an_emptied_folder_deletes_nothing(
    scanned, content_dir: Path
) -> None:
    settings, store, _ = scanned
    from feedsvc.errors import ContentRootError

    (content_dir / "002_ad53fbf95e7bb634.txt").unlink()
    assert scan(settings, store, now=NOW).removed == 1
    (content_dir / "000_a08af95bc486be6a.txt").unlink()
    with pytest.raises(ContentRootError):
        scan(settings, store, now=NOW)
    assert store.item("000_a08af95bc486be6a") is not None


def test_output_does_not_depend_on_discovery_order(
    tmp_path: Path, content_dir: Path, make_settings
) -> None:
    for i in range(12):
        (content_dir / f"n{i:02d}.md").write_text(
            f"# Same time {i}\n\nBody {i}.\n", encoding="utf-8"
        )
        os.utime(content_dir / f"n{i:02d}.md", (1_700_000_000, 1_700_000_000))
    bodies = []
    for run in range(2):
        settings = make_settings(content_dir, f"sqlite:///{tmp_path / f'order{run}.sqlite3'}")
        store = open_store(settings.store.url)
        scan(settings, store, now=NOW)
        cache = FeedCache(settings, store)
        bodies.append([cache.get(i.key, f.name).body for i in cache.grid() for f in FORMATS])
        store.close()
        for i in range(12):  # rename to reverse the walk order for the second run
            os.rename(content_dir / f"n{i:02d}.md", content_dir / f"tmp{i:02d}.md")
        for i in range(12):
            os.rename(content_dir / f"tmp{i:02d}.md", content_dir / f"n{i:02d}.md")
    assert bodies[0] == bodies[1]


def test_concurrent_scans_share_one_run(content_dir: Path, make_settings, store_url: str) -> None:
    settings = make_settings(content_dir, store_url)
    store = open_store(settings.store.url)
    calls = []
    gate = threading.Event()
    # Every caller passes the barrier just before run(); only then may the
    # first scan (held open by its clock) go on, so all eight overlap it.
    arrived = threading.Barrier(8, action=gate.set)

    def clock() -> datetime:
        calls.append(1)
        assert gate.wait(30)
        return NOW

    scanner = Scanner(settings, store, clock)
    reports = []

    def call() -> None:
        arrived.wait(30)
        reports.append(scanner.run())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(reports) == 8
    assert all(r == reports[0] for r in reports)
    assert reports[0].added == 2
    assert len(calls) == 2  # one scan: its start time and its finish time
    store.close()


def _many_files(root: Path, n: int) -> None:
    for i in range(n):
        lang, word = ("en", "Story") if i % 2 else ("ko", "기사")
        (root / f"many-{i:03d}.md").write_text(
            f"---\ntitle: {word} {i}\nlang: {lang}\ndate: 2024-01-{i % 28 + 1:02d}\n"
            f"categories: [Cat {i % 3}]\n---\n<p>Body {i} of the story.</p>\n",
            encoding="utf-8",
        )


def _store_state(store) -> tuple[object, ...]:
    files = store.files()
    items = {p: store.item(f.item_id) for p, f in files.items() if f.item_id}
    return files, items, store.generation()


def test_a_scan_staged_in_chunks_is_still_one_transaction(
    content_dir: Path, make_settings, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks written before a failure are rolled back: the store shows all or nothing."""
    from feedsvc import pipeline

    _many_files(content_dir, 9)
    monkeypatch.setattr(pipeline, "STAGE_ITEMS", 2)  # several chunks are written
    settings = make_settings(content_dir, store_url)
    store = open_store(settings.store.url)
    try:
        scan(settings, store, now=NOW)
        before = _store_state(store)
        for path in content_dir.glob("many-*.md"):
            path.write_text(path.read_text(encoding="utf-8") + "<p>More.</p>\n", "utf-8")
            os.utime(path, ns=(1, 1))  # a new fingerprint, so each file is read again

        def fail_late(done: int, total: int) -> None:
            assert total == 9
            if done == 8:  # four chunks of two are staged by now
                # A reader meanwhile still sees the previous scan, whole.
                assert _store_state(store) == before
                raise RuntimeError("killed mid-scan")

        with pytest.raises(RuntimeError, match="killed mid-scan"):
            scan(settings, store, now=NOW, progress=fail_late)
        assert _store_state(store) == before
        report = scan(settings, store, now=NOW)
        assert report.updated == 9 and not report.errors
        assert _store_state(store)[2] == before[2] + 1  # one scan, one generation step
    finally:
        store.close()


def test_an_unchanged_rescan_takes_no_write_lock(
    content_dir: Path, make_settings, store_url: str
) -> None:
    settings = make_settings(content_dir, store_url)
    store = open_store(settings.store.url)
    try:
        scan(settings, store, now=NOW)
        with store.scan_writer() as writer:
            writer.stage([], [])  # nothing staged: no transaction is opened
            generation = writer.commit(ScanChanges())
        assert generation == store.generation()
        report = scan(settings, store, now=NOW)
        assert report.unchanged == 2 and report.generation == generation
    finally:
        store.close()


def test_a_pooled_scan_stores_exactly_what_a_serial_scan_stores(
    tmp_path: Path, content_dir: Path, make_settings
) -> None:
    """The process pool (large cold scans) changes how fast, never what is stored."""
    _many_files(content_dir, 150)
    (content_dir / "broken.md").write_bytes(b"---\ntitle: never closed\n")
    states = []
    for workers in (1, 2):
        settings = make_settings(content_dir, f"sqlite:///{tmp_path / f'w{workers}.db'}")
        store = open_store(settings.store.url)
        try:
            report = scan(settings, store, now=NOW, workers=workers)
            assert report.added == 152 and [e.path for e in report.errors] == ["broken.md"]
            states.append(_store_state(store))
        finally:
            store.close()
    assert states[0] == states[1]
