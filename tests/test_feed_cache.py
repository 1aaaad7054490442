"""The feed cache: one render per feed and generation, ahead of requests, and no waiting.

Workers are apps on one store, as ``feedsvc serve`` runs them (one store
connection pool each); renders are counted by wrapping ``render_feed``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
from flask import Flask

from feedsvc import feed_cache, rendered_lru
from feedsvc.publish import RenderedFeed
from feedsvc.scanner import Scanner
from feedsvc.settings import Settings
from feedsvc.store import Store, open_store
from feedsvc.web import create_app

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN = "cache-token-1618"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FEED = "/feeds/all/all.rss"
# Long enough that no background poll runs during a test: only the stamp can tell.
NEVER = 3600.0


class Renders:
    """Counts ``render_feed`` calls; the first may wait for other threads to queue behind it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.hold_for = 0  # threads that must be waiting on this render before it ends
        self._waiting = 0
        self._changed = threading.Condition()
        real = feed_cache.render_feed
        renders = self

        def counted(*args: object, **kwargs: object) -> RenderedFeed:
            with renders._changed:
                renders.count += 1
                first = renders.count == 1
            if first and renders.hold_for:
                with renders._changed:
                    assert renders._changed.wait_for(
                        lambda: renders._waiting >= renders.hold_for, timeout=60
                    ), "the other threads never queued behind the first render"
            return real(*args, **kwargs)  # type: ignore[arg-type]

        class WaitCounted(Future):  # type: ignore[type-arg]
            def result(self, timeout: float | None = None) -> object:
                with renders._changed:
                    renders._waiting += 1
                    renders._changed.notify_all()
                return super().result(timeout)

        monkeypatch.setattr(feed_cache, "render_feed", counted)
        monkeypatch.setattr(rendered_lru, "Future", WaitCounted)


def _post(content: Path, name: str, title: str) -> None:
    (content / name).write_text(
        f"---\ntitle: {title}\nlang: en\ndate: 2025-06-01 10:00\ntags: [economy]\n---\nText.\n",
        encoding="utf-8",
    )


@pytest.fixture
def settings(content_dir: Path, make_settings, store_url: str) -> Settings:
    return make_settings(content_dir, store_url, server_refresh_token=TOKEN)


@pytest.fixture
def stores(settings: Settings) -> Iterator[Callable[[], Store]]:
    """One store connection per worker, closed at the end."""
    opened: list[Store] = []

    def open_one() -> Store:
        opened.append(open_store(settings.store.url))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


def _worker(settings: Settings, store: Store, request: pytest.FixtureRequest) -> Flask:
    app = create_app(settings, store=store, clock=lambda: NOW, recheck_seconds=NEVER)
    request.addfinalizer(app.extensions["feedsvc"].feeds.close)
    return app


@pytest.mark.parametrize("path", [FEED, "/feeds/all/tag/economy.atom"])
def test_threads_that_miss_a_feed_together_render_it_once(
    settings: Settings, stores, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    _post(settings.content_root, "a.md", "Budget passes")
    store = stores()
    Scanner(settings, store, lambda: NOW).run()
    app = create_app(settings, store=store, clock=lambda: NOW)
    assert app.test_client().get("/feeds/all/all.json").status_code == 200  # grid read
    renders = Renders(monkeypatch)
    threads = 6
    renders.hold_for = threads - 1
    start = threading.Barrier(threads)
    bodies: list[bytes] = []

    def ask() -> None:
        client = app.test_client()
        start.wait()
        response = client.get(path)
        assert response.status_code == 200
        bodies.append(response.data)

    workers = [threading.Thread(target=ask) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert renders.count == 1
    assert len(bodies) == threads and len(set(bodies)) == 1


def test_a_refresh_is_served_by_every_worker_at_once_and_never_sleeps(
    settings: Settings, stores, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    one = _worker(settings, stores(), request).test_client()
    other = _worker(settings, stores(), request).test_client()
    assert one.post("/api/refresh", headers=AUTH).json["added"] == 2
    before = other.get(FEED)
    assert before.status_code == 200 and b"Rates rise" not in before.data

    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds} s while answering")

    _post(settings.content_root, "rates.md", "Rates rise")
    monkeypatch.setattr(time, "sleep", no_sleep)
    assert one.post("/api/refresh", headers=AUTH).json["added"] == 1
    after = other.get(FEED)  # the other worker's very next request
    assert b"Rates rise" in after.data
    assert after.headers["ETag"] != before.headers["ETag"]
    assert other.get(FEED, headers={"If-None-Match": before.headers["ETag"]}).status_code == 200


def test_a_scan_by_another_process_is_rendered_before_any_request_asks(
    settings: Settings, stores, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    app = _worker(settings, stores(), request)
    client = app.test_client()
    watcher = Scanner(settings, stores(), lambda: NOW)  # e.g. the watcher process
    watcher.run()
    cache = app.extensions["feedsvc"].feeds
    cache.poll()  # what the worker's thread does every SERVER_RECHECK_SECONDS
    assert client.get(FEED).status_code == 200

    _post(settings.content_root, "rates.md", "Rates rise")
    watcher.run()
    renders = Renders(monkeypatch)
    cache.poll()
    grid = len(cache.grid()) * 3  # every grid feed in every format, rendered ahead
    assert renders.count == grid
    for path in (FEED, "/feeds/all/all.atom", "/feeds/en/all.json"):
        response = client.get(path)
        assert response.status_code == 200 and b"Rates rise" in response.data
    assert renders.count == grid  # no request paid for a render
    cache.poll()  # nothing moved: nothing is rendered again
    assert renders.count == grid


def test_every_worker_of_a_real_server_serves_a_refresh_at_once(serve, content_dir: Path) -> None:
    server = serve(content_dir, "--no-watch", server_refresh_token=TOKEN)
    assert requests.post(server.url + "/api/refresh", headers=AUTH, timeout=60).ok
    _post(content_dir, "rates.md", "Rates rise")
    # Each request on a new connection: the kernel spreads them over both workers.
    for path in (FEED, "/feeds/all/all.atom", "/feeds/all/all.json") * 4:
        assert b"Rates rise" not in requests.get(server.url + path, timeout=30).content
    answer = requests.post(server.url + "/api/refresh", headers=AUTH, timeout=60)
    assert answer.json()["added"] == 1
    for path in (FEED, "/feeds/all/all.atom", "/feeds/all/all.json") * 4:
        assert b"Rates rise" in requests.get(server.url + path, timeout=30).content, path


def test_every_feed_rendered_ahead_comes_in_order_with_its_items_read_once(
    settings: Settings, stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``all_feeds`` (``feedsvc build``) renders by two threads, a feed's formats
    together: the order is the grid's and then the tags' and authors', every
    body is what a request gets, and each feed's items are read once, not once
    per format (issue 19)."""
    for n, (lang, cat) in enumerate([("en", "news"), ("en", "sport"), ("ko", "news")] * 3):
        (settings.content_root / f"p{n}.md").write_text(
            f"---\ntitle: Story number {n}\nlang: {lang}\ncategories: [{cat}]\n"
            f"tags: [t{n % 4}]\nauthor: Writer {n % 2}\ndate: 2025-06-0{n % 9 + 1} 10:00\n---\n"
            f"Body of story {n}.\n",
            encoding="utf-8",
        )
    store = stores()
    Scanner(settings, store, lambda: NOW).run()
    reads: list[object] = []
    real = store.items_for

    def counted(key: object, limit: int) -> object:
        reads.append(key)
        return real(key, limit)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "items_for", counted)
    ahead = list(feed_cache.FeedCache(settings, store).all_feeds())
    keys = [info.key for info, _fmt, _feed in ahead]
    assert len(ahead) > 3 * 10
    assert sorted(map(str, reads)) == sorted({str(key) for key in keys})  # once per feed
    one_by_one = feed_cache.FeedCache(settings, stores())
    expected = [
        (info.key, fmt.name, one_by_one.get(info.key, fmt.name))
        for info in (
            *one_by_one.grid(),
            *one_by_one.term_grid("tag"),
            *one_by_one.term_grid("author"),
        )
        for fmt in feed_cache.FORMATS
    ]
    assert [(info.key, fmt.name) for info, fmt, _ in ahead] == [(k, f) for k, f, _ in expected]
    assert [feed.body for _, _, feed in ahead] == [e.body for _, _, e in expected if e is not None]
