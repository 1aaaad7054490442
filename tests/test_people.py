"""What people see around the feeds, through Flask's test client.

Feeds opened in a browser (the XSLT and the xml-stylesheet PI), tag and
author feeds, feeds that once existed, the index and item pages. The real
browser, the HTML validator and axe run in ``tests/test_readers.py``.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
from conftest import DATA
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree, html

from feedsvc.pipeline import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

NOW = datetime(2026, 1, 1, tzinfo=UTC)
BASE = "https://news.example.com"
# What Chromium and Firefox send when a person opens a link.
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
# What readers send: feedparser (and reader, which uses it), then curl-based ones.
READER_ACCEPTS = [
    "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
    "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1",
    "*/*",
    None,
]
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)


@pytest.fixture
def app(tmp_path: Path, make_settings, store_url: str) -> Flask:
    content = tmp_path / "content"
    shutil.copytree(DATA / "readers", content)
    settings = make_settings(content, store_url)
    store = open_store(settings.store.url)
    Scanner(settings, store, lambda: NOW).run()
    app = create_app(settings, store=store, clock=lambda: NOW)
    yield app
    store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def as_page(client: FlaskClient, path: str) -> html.HtmlElement:
    """A feed as a browser shows it: the feed transformed by the XSLT it names."""
    feed = client.get(path)
    assert feed.status_code == 200, path
    root = etree.fromstring(feed.data, STRICT)
    pi = root.getprevious()
    assert isinstance(pi, etree._ProcessingInstruction), path
    assert pi.target == "xml-stylesheet" and pi.get("type") == "text/xsl"
    stylesheet = client.get(pi.get("href"))
    assert stylesheet.status_code == 200
    transform = etree.XSLT(etree.fromstring(stylesheet.data, STRICT))
    return html.fromstring(str(transform(root)))


# --------------------------------------------------------------------------- XSLT


@pytest.mark.parametrize("path", ["/feeds/all/all.rss", "/feeds/en/all.atom", "/feeds/ko/정치.rss"])
def test_a_feed_names_an_xslt_that_shows_it_as_a_page(client: FlaskClient, path: str) -> None:
    body = client.get(path).data
    assert body.splitlines()[1] == b'<?xml-stylesheet type="text/xsl" href="/feed.xsl"?>'
    stylesheet = client.get("/feed.xsl")
    assert stylesheet.headers["Content-Type"] == "application/xslt+xml; charset=utf-8"
    again = client.get("/feed.xsl", headers={"If-None-Match": stylesheet.headers["ETag"]})
    assert again.status_code == 304

    page = as_page(client, path)
    parsed = feedparser.parse(body)
    assert page.findtext(".//h1") == parsed.feed.title
    assert parsed.feed.title in page.findtext(".//title")
    # How to subscribe: the feed's own public URL, to copy.
    assert page.findtext('.//section[@class="subscribe"]/code') == BASE + quote(path)
    articles = page.findall('.//div[@class="entries"]/article')
    assert len(articles) == len(parsed.entries) > 0
    for article, entry in zip(articles, parsed.entries, strict=True):
        link = article.find(".//h3/a")
        assert link.text_content() == entry.title
        assert link.get("href") == entry.link
        assert article.get("lang") in {"ko", "en", "ja"}  # each item in its own language
        shown = article.text_content()
        summary = entry.summary
        if entry.summary_detail.type == "text/html":
            summary = html.fromstring(summary).text_content()
        assert summary in shown  # the text as the reader shows it, not its markup
        date = article.find('.//p[@class="muted"]/*')
        assert str(entry.published_parsed.tm_year) in date.text_content()


def test_the_page_shows_summaries_as_text_never_as_markup(client: FlaskClient) -> None:
    page = as_page(client, "/feeds/en/world.rss")
    (article,) = page.findall('.//div[@class="entries"]/article')
    assert "new tariffs & a stronger dollar" in article.text_content()
    assert "&amp;" not in article.text_content()
    heading = article.findtext(".//h3/a")
    assert heading == "Markets & more: Q&A on tariffs < 10%, \"quotes\" and 'apostrophes'"


def test_a_browser_gets_the_same_bytes_as_xml_and_readers_the_feed_type(
    client: FlaskClient,
) -> None:
    for path, media_type in (
        ("/feeds/all/all.rss", "application/rss+xml"),
        ("/feeds/ko/all.atom", "application/atom+xml"),
    ):
        browser = client.get(path, headers={"Accept": BROWSER_ACCEPT})
        assert browser.headers["Content-Type"] == "application/xml; charset=utf-8"
        assert browser.headers["Vary"] == "Accept, Accept-Encoding"
        for accept in READER_ACCEPTS:
            headers = {"Accept": accept} if accept else {}
            reader = client.get(path, headers=headers)
            assert reader.headers["Content-Type"] == f"{media_type}; charset=utf-8", accept
            assert reader.data == browser.data  # same bytes, every request
            assert reader.headers["ETag"] != browser.headers["ETag"]
            # Each representation revalidates with its own ETag.
            again = client.get(path, headers={**headers, "If-None-Match": reader.headers["ETag"]})
            assert again.status_code == 304
        revalidated = client.get(
            path, headers={"Accept": BROWSER_ACCEPT, "If-None-Match": browser.headers["ETag"]}
        )
        assert revalidated.status_code == 304
    # JSON Feed has no stylesheet: one type for everyone.
    json_feed = client.get("/feeds/all/all.json", headers={"Accept": BROWSER_ACCEPT})
    assert json_feed.headers["Content-Type"] == "application/feed+json; charset=utf-8"
    assert json_feed.headers["Vary"] == "Accept-Encoding"
