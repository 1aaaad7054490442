"""Scheduled and expiring items (docs/dates.md) appear and leave by themselves, with no scan.

The first tests inject the clock: one scan, then only the watcher's timer
(``Releaser``) moves, exactly at the scheduled moment, on SQLite and
PostgreSQL, and a second app on the same store (another instance) follows.
The last one runs ``feedsvc serve`` for real with an item a few seconds ahead.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import feedparser
import pytest
import requests
from test_cli import run

from feedsvc.scanner import Scanner
from feedsvc.schedule import Releaser
from feedsvc.store import open_store
from feedsvc.web import create_app

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TOKEN = "s3cret-token"


def _titles(client, path: str = "/feeds/all/all.rss") -> list[str]:
    return _feed_titles(client.get(path).get_data())


@pytest.fixture
def timed_site(content_dir: Path, make_settings, store_url: str):
    (content_dir / "later.md").write_text(
        "---\ntitle: Later\nlang: en\ndate: 2026-03-01T19:00:00+09:00\n---\nNot yet.\n", "utf-8"
    )
    (content_dir / "brief.md").write_text(
        "---\ntitle: Brief\nlang: en\ndate: 2026-02-01\nexpiryDate: 2026-03-01T20:00:00+09:00\n"
        "---\nGone soon.\n",
        "utf-8",
    )
    (content_dir / "hugo.md").write_text(
        "---\ntitle: Hugo style\nlang: en\ndate: 2020-05-05\n"
        "publishDate: 2026-03-01T19:30:00+09:00\n---\nWritten long ago, out later.\n",
        "utf-8",
    )
    settings = make_settings(content_dir, store_url, content_settle_seconds="0")
    clock = {"now": T0}
    store = open_store(settings.store.url)
    other = open_store(settings.store.url)  # a second instance on the same store
    report = Scanner(settings, store, lambda: clock["now"]).run()
    assert not report.errors, report.errors
    apps = [
        create_app(settings, store=s, clock=lambda: clock["now"]).test_client()
        for s in (store, other)
    ]
    releaser = Releaser(store, lambda: clock["now"])
    yield clock, apps, releaser, store, settings
    store.close()
    other.close()


def test_a_scheduled_item_appears_at_its_time_and_an_expired_one_leaves(timed_site) -> None:
    clock, (client, instance), releaser, store, _ = timed_site
    scans = store.last_scan().scans_total

    # At T0: the scheduled items are out of every feed and page, the expiring one is in.
    releaser.tick()
    assert releaser.next_change == datetime.fromisoformat("2026-03-01T19:00:00+09:00")
    titles = _titles(client)
    assert "Later" not in titles and "Hugo style" not in titles and "Brief" in titles
    assert "Later" not in _titles(client, "/feeds/en/all.atom")
    assert client.get("/items/later").status_code == 404
    before = client.get("/feeds/all/all.rss")
    assert parsedate_to_datetime(before.headers["Last-Modified"]) <= T0
    status = client.get("/api/status").get_json()
    scheduled = {entry["path"]: entry for entry in status["scheduled"]}
    assert scheduled["later.md"]["publishes_at"] == "2026-03-01T19:00:00+09:00"
    assert scheduled["later.md"]["listed"] is False
    assert scheduled["hugo.md"]["publishes_at"] == "2026-03-01T19:30:00+09:00"
    assert scheduled["brief.md"]["expires_at"] == "2026-03-01T20:00:00+09:00"
    assert scheduled["brief.md"]["listed"] is True

    # One second early: nothing moves.
    clock["now"] = T0 + timedelta(hours=1) - timedelta(seconds=1)
    releaser.tick()
    assert client.get("/feeds/all/all.rss").headers["ETag"] == before.headers["ETag"]

    # At its time the item is there, with no scan: the timer alone moved it.
    clock["now"] = T0 + timedelta(hours=1)
    releaser.tick()
    after = client.get("/feeds/all/all.rss")
    assert "Later" in _titles(client) and "Hugo style" not in _titles(client)
    assert after.headers["ETag"] != before.headers["ETag"]
    last_modified = parsedate_to_datetime(after.headers["Last-Modified"])
    assert last_modified == T0 + timedelta(hours=1)  # its own date, never in the future
    assert client.get("/items/later").status_code == 200
    assert "Later" in _titles(instance)  # the other instance follows the generation
    assert "Later" in _titles(client, "/feeds/en/all.atom")
    assert releaser.next_change == datetime.fromisoformat("2026-03-01T19:30:00+09:00")

    # publishDate later than date: listed at the publishDate, sorted by its date.
    clock["now"] = T0 + timedelta(hours=1, minutes=30)
    releaser.tick()
    assert _titles(client)[-1] == "Hugo style"

    # expiryDate takes the item out the same way.
    clock["now"] = T0 + timedelta(hours=2)
    releaser.tick()
    assert "Brief" not in _titles(client) and "Brief" not in _titles(instance)
    assert client.get("/items/brief").status_code == 404
    assert releaser.next_change is None
    assert client.get("/api/status").get_json()["scheduled"] == []
    assert store.last_scan().scans_total == scans  # not one scan since the first


def test_a_scan_after_the_time_lists_the_item_even_if_no_timer_ran(timed_site) -> None:
    clock, (client, _), _releaser, store, settings = timed_site
    clock["now"] = T0 + timedelta(hours=3)
    report = Scanner(settings, store, lambda: clock["now"]).run()
    assert (report.added, report.updated) == (0, 0)  # nothing on disk changed
    assert (report.items.scheduled, report.items.expired, report.items.listed) == (0, 1, 4)
    titles = _titles(client)
    assert "Later" in titles and "Hugo style" in titles and "Brief" not in titles


def test_feedsvc_serve_lists_a_scheduled_item_by_itself(
    serve, tmp_path: Path, store_url: str
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "now.md").write_text("---\ntitle: Already out\nlang: en\n---\nHere.\n", "utf-8")
    server = serve(
        content,
        store_url=store_url,
        server_refresh_token=TOKEN,
        watch_interval_seconds="3600",
        watch_file_events="false",
        content_settle_seconds="0",
    )
    # The watcher's start-up scan is over (and its scan lock released): a refresh
    # now runs a scan of its own rather than sharing that one.
    server.wait_for_log(r"feedsvc\.watcher: scan: ")
    # A few seconds ahead; a refresh (in a web worker) writes it, the watcher lists it.
    due = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    (content / "soon.md").write_text(
        f"---\ntitle: Right on time\nlang: en\ndate: {due.isoformat()}\n---\nNow.\n", "utf-8"
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(server.url + "/api/refresh", headers=auth, timeout=60).json()["added"] == 1
    before = requests.get(server.url + "/feeds/all/all.rss", timeout=30)
    assert "Right on time" not in _feed_titles(before.content)
    # Meanwhile an operator lists the feeds: another process opens and closes the
    # store, which must not cost the watcher's next commit (store/backend.py).
    listed = run(tmp_path, content, "feeds", store=store_url)
    assert listed.returncode == 0, listed.stderr
    scanned = requests.get(server.url + "/api/status", timeout=30).json()["last_scan"]

    server.wait_for_log(r"scheduled items entered or left the feeds")
    after = requests.get(server.url + "/feeds/all/all.rss", timeout=30)
    assert datetime.now(UTC) >= due
    assert "Right on time" in _feed_titles(after.content)
    assert after.headers["ETag"] != before.headers["ETag"]
    assert parsedate_to_datetime(after.headers["Last-Modified"]) == due
    last = requests.get(server.url + "/api/status", timeout=30).json()["last_scan"]
    assert last["finished_at"] == scanned["finished_at"]  # no scan in between


def _feed_titles(body: bytes) -> list[str]:
    return [entry.title for entry in feedparser.parse(body).entries]


def test_a_store_from_before_the_schedule_is_upgraded_in_place(tmp_path: Path) -> None:
    import sqlalchemy as sa

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    open_store(url).close()
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # what a version-2 store looks like
        conn.execute(sa.text("DROP TABLE schedule"))
        conn.execute(sa.text("UPDATE meta SET value = '2' WHERE key = 'schema_version'"))
    store = open_store(url)
    try:
        assert store.scheduled() == ()
        assert store.next_change(T0) is None
    finally:
        store.close()
    with engine.connect() as conn:
        version = conn.execute(sa.text("SELECT value FROM meta WHERE key='schema_version'"))
        assert version.scalar_one() == "3"
    engine.dispose()


def test_feedsvc_watch_alone_releases_while_other_processes_open_the_store(
    tmp_path: Path,
) -> None:
    """SQLite: `feedsvc feeds` opening and closing the store never costs the timer's commit."""
    import subprocess
    import sys
    import threading

    from conftest import feedsvc_env

    content = tmp_path / "content"
    content.mkdir()
    (content / "now.md").write_text("---\ntitle: Already out\nlang: en\n---\nHere.\n", "utf-8")
    due = (datetime.now(UTC) + timedelta(seconds=15)).replace(microsecond=0)
    (content / "soon.md").write_text(
        f"---\ntitle: Right on time\nlang: en\ndate: {due.isoformat()}\n---\nNow.\n", "utf-8"
    )
    env = feedsvc_env(
        tmp_path,
        content,
        watch_interval_seconds="3600",
        watch_file_events="false",
        content_settle_seconds="0",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "watch"],
        env={**os.environ, **env},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    logged = threading.Condition()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with logged:
                log.append(line)
                logged.notify_all()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    def wait_for(text: str) -> None:
        with logged:
            found = logged.wait_for(lambda: any(text in line for line in log), timeout=90)
        assert found, "".join(log)

    try:
        wait_for("feedsvc.watcher: scan: ")
        assert datetime.now(UTC) < due, "the watcher took too long to start"
        listed = run(tmp_path, content, "feeds")
        assert "/feeds/all/all.rss\t1\n" in listed.stdout
        wait_for("scheduled items entered or left the feeds")
        listed = run(tmp_path, content, "feeds")
        assert "/feeds/all/all.rss\t2\n" in listed.stdout, listed.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
