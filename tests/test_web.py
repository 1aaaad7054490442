"""HTTP behaviour through Flask's test client: the grid, caching, pages and the API."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from conftest import metric_samples
from flask import Flask
from flask.testing import FlaskClient

from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

TOKEN = "s3cret-token"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def app(content_dir: Path, make_settings, store_url: str) -> Flask:
    (content_dir / "정치").mkdir()
    (content_dir / "정치" / "vote.md").write_text(
        "---\ntitle: 국회, 예산안 통과\nlang: ko\ndate: 2024-12-01 10:00\n---\n"
        "국회가 내년도 예산안을 통과시켰다.\n",
        encoding="utf-8",
    )
    settings = make_settings(content_dir, store_url, server_refresh_token=TOKEN)
    store = open_store(settings.store.url)
    Scanner(settings, store, lambda: NOW).run()
    app = create_app(settings, store=store, clock=lambda: NOW)
    yield app
    store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


GRID = [
    "/feeds/all/all.rss",
    "/feeds/all/all.atom",
    "/feeds/all/all.json",
    "/feeds/ko/all.rss",
    "/feeds/en/all.atom",
    "/feeds/en/news-today.json",
    "/feeds/all/news.rss",
    "/feeds/ko/news.atom",
    "/feeds/all/" + quote("정치") + ".rss",
    "/feeds/ko/" + quote("정치") + ".json",
]


@pytest.mark.parametrize("path", GRID)
def test_every_cell_with_items_exists_with_its_content_type(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, path
    expected = {
        "rss": "application/rss+xml; charset=utf-8",
        "atom": "application/atom+xml; charset=utf-8",
        "json": "application/feed+json; charset=utf-8",
    }[path.rsplit(".", 1)[1]]
    assert response.headers["Content-Type"] == expected
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    # RSS and Atom vary by Accept too: a browser is shown them as a page.
    vary = "Accept-Encoding" if path.endswith(".json") else "Accept, Accept-Encoding"
    assert response.headers["Vary"] == vary
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["ETag"].startswith('"')
    if path.endswith(".json"):
        assert json.loads(response.data)["version"] == "https://jsonfeed.org/version/1.1"
    else:
        assert not feedparser.parse(response.data).bozo


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/en/news.rss",  # the Korean sample is the only News item
        "/feeds/fr/all.rss",
        "/feeds/all/sports.rss",
        "/feeds/all/all.xml",
        "/feeds/all/all",
        "/feeds/all.rss",
        "/feeds/all/all.rss/extra",
    ],
)
def test_cells_without_items_and_other_paths_are_404_with_a_hint(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert b"/feeds.opml" in response.data
    assert b"Traceback" not in response.data


def test_feeds_are_newest_first_and_per_language(client: FlaskClient) -> None:
    feed = feedparser.parse(client.get("/feeds/all/all.atom").data)
    dates = [e.published_parsed for e in feed.entries]
    assert dates == sorted(dates, reverse=True)
    ko = feedparser.parse(client.get("/feeds/ko/all.atom").data)
    assert {e.title for e in ko.entries} >= {"국회, 예산안 통과"}
    assert "N. KOREA RATIFIES TREATY WITH RUSSIA" not in {e.title for e in ko.entries}


def test_head_has_the_get_headers_and_no_body(client: FlaskClient) -> None:
    get = client.get("/feeds/all/all.rss")
    head = client.head("/feeds/all/all.rss")
    assert head.status_code == 200
    assert head.data == b""
    assert head.headers["ETag"] == get.headers["ETag"]
    assert head.headers["Content-Length"] == str(len(get.data))


def test_conditional_get_cycle(client: FlaskClient) -> None:
    first = client.get("/feeds/all/all.rss")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]

    assert client.get("/feeds/all/all.rss", headers={"If-None-Match": etag}).status_code == 304
    listed = f'"nope", W/{etag}'
    assert client.get("/feeds/all/all.rss", headers={"If-None-Match": listed}).status_code == 304
    assert client.get("/feeds/all/all.rss", headers={"If-None-Match": "*"}).status_code == 304
    assert client.get("/feeds/all/all.rss", headers={"If-None-Match": '"other"'}).status_code == 200
    # If-None-Match takes precedence over If-Modified-Since (RFC 9110 §13.2.2).
    both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
    assert client.get("/feeds/all/all.rss", headers=both).status_code == 200

    not_modified = client.get("/feeds/all/all.rss", headers={"If-Modified-Since": modified})
    assert not_modified.status_code == 304
    assert not_modified.data == b""
    assert not_modified.headers["ETag"] == etag

    older = format_datetime(NOW - timedelta(days=3650), usegmt=True)
    assert client.get("/feeds/all/all.rss", headers={"If-Modified-Since": older}).status_code == 200
    future = format_datetime(NOW + timedelta(days=1), usegmt=True)
    assert (
        client.get("/feeds/all/all.rss", headers={"If-Modified-Since": future}).status_code == 200
    )
    bad = {"If-Modified-Since": "yesterday-ish"}
    assert client.get("/feeds/all/all.rss", headers=bad).status_code == 200


def test_gzip_when_accepted(client: FlaskClient) -> None:
    plain = client.get("/feeds/all/all.json")
    zipped = client.get("/feeds/all/all.json", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert "Content-Encoding" not in plain.headers
    refused = client.get("/feeds/all/all.json", headers={"Accept-Encoding": "gzip;q=0, br"})
    assert "Content-Encoding" not in refused.headers
    again = {"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]}
    assert client.get("/feeds/all/all.json", headers=again).status_code == 304


def test_same_bytes_and_links_whatever_the_host_header(client: FlaskClient) -> None:
    plain = client.get("/feeds/all/all.atom")
    for headers in (
        {"Host": "evil.example"},
        {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http"},
        {"Forwarded": "host=evil.example;proto=http"},
    ):
        spoofed = client.get("/feeds/all/all.atom", headers=headers)
        assert spoofed.data == plain.data
        assert spoofed.headers["ETag"] == plain.headers["ETag"]
        page = client.get("/", headers=headers)
        assert b"evil.example" not in page.data
    assert b'href="https://news.example.com/feeds/all/all.atom"' in plain.data


def test_index_lists_every_feed_with_counts_and_autodiscovery(client: FlaskClient) -> None:
    page = client.get("/").get_data(as_text=True)
    assert '<link rel="alternate" type="application/rss+xml"' in page
    assert 'href="https://news.example.com/feeds/all/all.atom"' in page
    assert "News Today" in page and "정치" in page
    assert "Last scan:" in page


def test_opml_lists_every_feed(client: FlaskClient) -> None:
    response = client.get("/feeds.opml")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<opml version="2.0">')
    assert 'xmlUrl="https://news.example.com/feeds/en/news-today.rss"' in text
    assert "/feeds/all/%EC%A0%95%EC%B9%98.atom" in text


def test_item_page_shows_the_item(client: FlaskClient) -> None:
    feed = json.loads(client.get("/feeds/en/all.json").data)
    url = feed["items"][0]["url"]
    assert url == "https://news.example.com/items/002_ad53fbf95e7bb634"
    page = client.get("/items/002_ad53fbf95e7bb634")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "N. KOREA RATIFIES TREATY WITH RUSSIA" in text
    assert "[LEAD]" not in text
    assert client.get("/items/nope").status_code == 404


class TestRefresh:
    def test_without_token_configured_is_403(self, content_dir: Path, make_settings) -> None:
        app = create_app(make_settings(content_dir))
        assert app.test_client().post("/api/refresh").status_code == 403

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "Bearer wrong",
            "Basic " + TOKEN,
            "Bearer",
            "Bearer é",
            "Bearer " + "x" * 100_000,
            TOKEN,
        ],
    )
    def test_bad_credentials_are_401(self, client: FlaskClient, header: str | None) -> None:
        headers = {} if header is None else {"Authorization": header}
        response = client.post("/api/refresh", headers=headers)
        assert response.status_code == 401
        assert TOKEN not in response.get_data(as_text=True)

    def test_token_in_query_string_is_not_accepted(self, client: FlaskClient) -> None:
        assert client.post(f"/api/refresh?token={TOKEN}").status_code == 401

    def test_get_is_405_with_allow(self, client: FlaskClient) -> None:
        response = client.get("/api/refresh")
        assert response.status_code == 405
        assert "POST" in response.headers["Allow"]

    def test_refresh_reports_the_scan(self, client: FlaskClient, content_dir: Path) -> None:
        (content_dir / "broken.md").write_bytes(b"---\ntitle: [unclosed\n---\nbody\n")
        response = client.post("/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200
        body = response.get_json()
        # docs/api.md's keys, and the report's own additions (docs/identity.md).
        assert {"added", "updated", "removed", "unchanged", "errors", "duration_ms"} <= set(body)
        assert body["warnings"] == []
        assert body["unchanged"] == 3
        assert [e["path"] for e in body["errors"]] == ["broken.md"]
        assert body["errors"][0]["error"]


def test_status_health_and_metrics(client: FlaskClient) -> None:
    status = client.get("/api/status").get_json()
    assert status["items"] == 3
    assert status["items_by_language"] == {"en": 1, "ko": 2}
    assert status["last_scan"]["added"] == 3
    assert status["next_scan"]
    assert client.get("/healthz").status_code == 200
    client.get("/feeds/all/all.rss")
    metrics = client.get("/metrics").get_data(as_text=True)
    # As a scraper reads it: every family parses, and the figures are the store's.
    samples = metric_samples(metrics)
    assert samples[("feedsvc_items", (("language", "ko"),))] == 2
    assert samples[("feedsvc_items", (("language", "all"),))] == 3
    feed_route = (("route", "/feeds/<language>/<name>"), ("status", "200"))
    assert samples[("feedsvc_http_requests_total", feed_route)] >= 1
    assert samples[("feedsvc_last_scan_files", (("outcome", "added"),))] == 3
    assert samples[("feedsvc_last_scan_duration_seconds", ())] >= 0
    assert samples[("feedsvc_scans_total", ())] == 1
    assert samples[("feedsvc_feed_not_modified_ratio", ())] == 0
