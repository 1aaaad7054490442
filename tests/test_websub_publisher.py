"""WebSub publisher (W3C WebSub §4): every feed names its hubs and itself, in the
document and in an HTTP ``Link`` header, as a subscriber's discovery reads them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
from flask.testing import FlaskClient
from requests.utils import parse_header_links

from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BASE = "https://news.example.com"
EXTERNAL = ("https://hub.example.net/", "https://push.example.org/hub?x=1")
HUBS = (BASE + "/websub", *EXTERNAL)  # the built-in hub first


@pytest.fixture
def client(content_dir: Path, make_settings, tmp_path: Path) -> FlaskClient:
    settings = make_settings(content_dir, websub_hubs=",".join(EXTERNAL))
    store = open_store(settings.store.url)
    Scanner(settings, store, lambda: NOW).run()
    yield create_app(settings, store=store, clock=lambda: NOW).test_client()
    store.close()


def link_header(response) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for link in parse_header_links(response.headers["Link"]):
        found.setdefault(link["rel"], []).append(link["url"])
    return found


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_every_format_names_its_hubs_and_itself(client: FlaskClient, fmt: str) -> None:
    path = f"/feeds/en/news-today.{fmt}"
    response = client.get(path, headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert link_header(response) == {"hub": list(HUBS), "self": [BASE + path]}

    body = client.get(path).data
    if fmt == "json":
        feed = json.loads(body)
        assert feed["hubs"] == [{"type": "WebSub", "url": hub} for hub in HUBS]
        assert feed["feed_url"] == BASE + path
    else:
        parsed = feedparser.parse(body)
        assert not parsed.bozo
        links = parsed.feed.links
        assert [x.href for x in links if x.rel == "hub"] == list(HUBS)
        assert [x.href for x in links if x.rel == "self"] == [BASE + path]


def test_hub_off_and_none_configured_means_only_self(content_dir: Path, make_settings) -> None:
    settings = make_settings(content_dir, websub_hub="false")
    store = open_store(settings.store.url)
    try:
        Scanner(settings, store, lambda: NOW).run()
        client = create_app(settings, store=store, clock=lambda: NOW).test_client()
        response = client.get("/feeds/all/all.atom")
        assert link_header(response) == {"self": [BASE + "/feeds/all/all.atom"]}
        assert "hubs" not in json.loads(client.get("/feeds/all/all.json").data)
        # and nothing answers at the hub's address
        assert client.post("/websub", data={"hub.mode": "subscribe"}).status_code == 404
    finally:
        store.close()
