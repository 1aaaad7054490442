"""The store heals (issue #13, point 2): a store file deleted under a running ``feedsvc serve``.

The watcher notices at its next scan that the file at the store's path is not
the one it opened (st_dev/st_ino), says so in the log and in ``/api/status``,
opens a new store there and rebuilds it from the content; the web workers
follow. Nothing is written into the deleted file: after the episode, the file
on disk holds every item, including one added afterwards. A store opened while
its file was read-only (``chattr +i`` on a small ext4, which binds root too) heals
at the first scan after the file is writable again, with no restart. (Full-disk
episodes: ``test_supervision.py`` and ``test_faults.py``.)
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from conftest import wait_until
from flask.testing import FlaskClient

from feedsvc.errors import StoreError
from feedsvc.scanner import Scanner
from feedsvc.settings import Settings
from feedsvc.store import Store, engine, open_store
from feedsvc.web import create_app


def utc_now() -> datetime:
    return datetime.now(UTC)


def _titles_on_disk(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        import json

        return {json.loads(row[0])["title"] for row in conn.execute("SELECT data FROM items")}
    finally:
        conn.close()


def test_a_deleted_store_file_is_noticed_and_rebuilt_never_written_while_deleted(
    serve, content_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "store.sqlite3"
    server = serve(content_dir, store_url=f"sqlite:///{db}", watch_interval_seconds="2")
    feed_url = server.url + "/feeds/all/all.json"

    def titles() -> set[str]:
        answer = requests.get(feed_url)
        return {i["title"] for i in answer.json()["items"]} if answer.status_code == 200 else set()

    # The grid's all/all feed may answer, empty, before the first scan has written.
    before = wait_until(lambda: titles() if len(titles()) == 2 else None, "the first scan")
    # A subscriber polling throughout: every answer has the feed's items.
    answers: list[tuple[int, set[str]]] = []
    polled, stop = threading.Event(), threading.Event()

    def poll() -> None:
        while not stop.is_set():
            answer = requests.get(feed_url)
            got = {i["title"] for i in answer.json()["items"]} if answer.ok else set()
            answers.append((answer.status_code, got))
            polled.set()

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    polled.wait(timeout=30)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    server.wait_for_log(r"the store file was deleted while feedsvc ran: reopened it")

    def said_so() -> bool:
        status = requests.get(server.url + "/api/status").json()
        return any("store file was deleted" in r for r in status.get("reasons", []))

    wait_until(said_so, "/api/status naming the deleted store file", timeout=10)
    # The feeds were served all along, and are again from the rebuilt store.
    assert requests.get(feed_url).status_code == 200
    (content_dir / "after.md").write_text("# Added after\n\nnew\n", encoding="utf-8")
    wait_until(
        lambda: "Added after" in titles(),
        "the new item served from the new store file",
    )
    stop.set()
    poller.join(timeout=30)
    # Never a 404 or a feed without its items; a 503 (the store briefly unreadable
    # while its file is swapped, docs/operations.md) tells the reader to come back.
    missed = [
        (status, got)
        for status, got in answers
        if status != 503 and (status != 200 or not before <= got)
    ]
    assert not missed, f"{len(missed)} of {len(answers)} answers lacked the feed: {missed[:3]}"
    assert _titles_on_disk(db) == before | {"Added after"}


@pytest.fixture
def watcher_and_web(
    content_dir: Path, tmp_path: Path, make_settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Settings, Store, Store, FlaskClient]]:
    """A scanned SQLite store opened twice, as the watcher and a web worker of
    ``feedsvc serve`` hold it, and a client of that worker; it checks the store
    file at every request (a server does, at most once a second)."""
    monkeypatch.setattr(engine, "IDENTITY_RECHECK_SECONDS", 0.0)
    settings = make_settings(content_dir, f"sqlite:///{tmp_path / 'store.sqlite3'}")
    watcher, web = open_store(settings.store.url), open_store(settings.store.url)
    try:
        Scanner(settings, watcher, utc_now).run()
        yield settings, watcher, web, create_app(settings, store=web).test_client()
    finally:
        watcher.close()
        web.close()


def _served_titles(client: FlaskClient) -> set[str]:
    answer = client.get("/feeds/all/all.json")
    assert answer.status_code == 200, answer.status_code
    return {i["title"] for i in answer.json["items"]}


def _delete_store_file(settings: Settings) -> Path:
    db = Path(settings.store.url.removeprefix("sqlite:///"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return db


def test_web_workers_serve_the_old_store_file_until_the_new_one_is_rebuilt(
    watcher_and_web: tuple[Settings, Store, Store, FlaskClient], content_dir: Path
) -> None:
    """While the watcher's new store file is made but not yet scanned, a web worker
    answers every feed with its items, never 404 (docs/operations.md, "The store
    heals"), and follows the new file once its rebuild is done."""
    settings, watcher, _web, client = watcher_and_web
    before = _served_titles(client)
    assert len(before) == 2
    db = _delete_store_file(settings)
    # A watcher's scan starts by making the new file (Scanner._scan_and_record):
    # until the scan filled it, the worker keeps the feeds it had.
    assert "deleted" in (watcher.reopen_if_replaced(create=True) or "")
    assert _served_titles(client) == before
    (content_dir / "after.md").write_text("# Added after\n\nnew\n", encoding="utf-8")
    Scanner(settings, watcher, utc_now).run()
    assert _served_titles(client) == before | {"Added after"}  # from the rebuilt file
    assert _titles_on_disk(db) == before | {"Added after"}


def test_a_web_worker_never_makes_a_store_file(
    watcher_and_web: tuple[Settings, Store, Store, FlaskClient],
) -> None:
    """A worker that needs a new connection while the store file is gone answers
    from the feeds it has and leaves the path empty: an empty file there would be
    served as a store without items, and taken by the watcher as a replacement."""
    settings, _watcher, web, client = watcher_and_web
    before = _served_titles(client)
    db = _delete_store_file(settings)
    web.close()  # its pooled connections are gone, as after an I/O error
    assert _served_titles(client) == before
    assert not db.exists()


@pytest.fixture
def ext4(tmp_path: Path) -> Iterator[Path]:
    """A small ext4 filesystem of its own (loop-mounted; needs root, as on CI), where
    ``chattr +i`` makes the store file read-only even for root."""
    image, mount = tmp_path / "ext4.img", tmp_path / "ext4"
    mount.mkdir()
    with open(image, "wb") as handle:
        handle.truncate(16 * 1024 * 1024)
    steps = [["mkfs.ext4", "-q", str(image)], ["mount", "-o", "loop", str(image), str(mount)]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            if os.environ.get("CI"):
                pytest.fail(f"{step[0]} failed on CI: {done.stderr.strip()}")
            pytest.skip(f"{step[0]} failed here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        for path in mount.iterdir():
            subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_store_opened_while_read_only_heals_without_a_restart(
    ext4: Path, content_dir: Path, make_settings
) -> None:
    settings = make_settings(content_dir, f"sqlite:///{ext4 / 'store.sqlite3'}")
    first = open_store(settings.store.url)
    Scanner(settings, first, utc_now).run()
    first.close()
    db = ext4 / "store.sqlite3"
    subprocess.run(["chattr", "+i", str(db)], check=True)
    # A watcher (re)started now opens its connections on a read-only file.
    store = open_store(settings.store.url)
    try:
        app = create_app(settings, store=store)
        scanner = app.extensions["feedsvc"].scanner  # the app's own, as a refresh uses
        client = app.test_client()
        (content_dir / "new.md").write_text("# New\n\nwritten meanwhile\n", encoding="utf-8")
        with pytest.raises(StoreError, match="readonly database"):
            scanner.run()
        status = client.get("/api/status").json
        assert status["status"] == "degraded"
        assert any("cannot be written" in r for r in status["reasons"]), status
        assert client.get("/feeds/all/all.rss").status_code == 200  # last good feeds
        subprocess.run(["chattr", "-i", str(db)], check=True)
        # The cause is gone: the next scan succeeds, in the same process.
        report = scanner.run()
        assert report.added == 1
        assert client.get("/api/status").json["status"] == "ok"
    finally:
        store.close()
