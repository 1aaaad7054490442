"""What people see around the feeds, through Flask's test client.

Feeds opened in a browser (the XSLT and the xml-stylesheet PI), tag and
author feeds, feeds that once existed, the index and item pages. The real
browser, the HTML validator and axe run in ``tests/test_readers.py``.
"""

from __future__ import annotations

import json
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

from feedsvc.errors import ContentRootError
from feedsvc.scanner import Scanner
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


# --------------------------------------------------------------------------- tag and author feeds


TERM_FEEDS = {
    # path: titles of its items, newest first
    "/feeds/all/tag/" + quote("국회") + ".rss": ["국회, 2025년도 예산안 본회의 통과"],
    "/feeds/ko/tag/" + quote("예산") + ".atom": ["국회, 2025년도 예산안 본회의 통과"],
    "/feeds/en/tag/markets.json": [
        "Markets & more: Q&A on tariffs < 10%, \"quotes\" and 'apostrophes'"
    ],
    "/feeds/ja/author/" + quote("佐藤花子") + ".rss": [
        "円相場、一時1ドル＝150円台に 日銀の利上げ観測が後退"
    ],
    "/feeds/all/author/" + quote("김민지-기자") + ".atom": ["국회, 2025년도 예산안 본회의 통과"],
}


@pytest.mark.parametrize("path", list(TERM_FEEDS))
def test_tag_and_author_feeds_list_their_items(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, path
    if path.endswith(".json"):
        doc = json.loads(response.data)
        titles = [item["title"] for item in doc["items"]]
        assert doc["feed_url"] == BASE + path
    else:
        parsed = feedparser.parse(response.data)
        assert not parsed.bozo, parsed.bozo_exception
        titles = [entry.title for entry in parsed.entries]
        assert any(link.href == BASE + path for link in parsed.feed.links if link.rel == "self")
    assert titles == TERM_FEEDS[path]
    # Rendered once, then served from the cache: the same bytes and ETag.
    again = client.get(path)
    assert again.data == response.data and again.headers["ETag"] == response.headers["ETag"]


def test_tag_feeds_cannot_collide_with_categories(client: FlaskClient) -> None:
    # A category slug is one path segment; tag and author feeds have two.
    assert client.get("/feeds/all/tag.rss").status_code == 404  # no category "tag"
    assert client.get("/feeds/all/tag/no-such-tag.rss").status_code == 404
    assert client.get("/feeds/all/colour/markets.rss").status_code == 404  # not a facet
    assert client.get("/feeds/ko/tag/markets.rss").status_code == 404  # markets is en only


def test_tags_page_and_opml_list_every_tag_and_author_feed(client: FlaskClient) -> None:
    index = html.fromstring(client.get("/").data)
    assert [a.text for a in index.iter("a") if a.get("href") == BASE + "/tags"]
    page = html.fromstring(client.get("/tags").data)
    alternates = {el.get("href") for el in page.xpath('//head/link[@rel="alternate"]')}
    for path in TERM_FEEDS:
        assert BASE + path in alternates, path
    opml = etree.fromstring(client.get("/feeds.opml").data, STRICT)
    urls = {outline.get("xmlUrl") for outline in opml.iter("outline")}
    for path in TERM_FEEDS:
        if not path.endswith(".json"):
            assert BASE + path in urls, path
    assert BASE + "/feeds/all/author/" + quote("佐藤花子") + ".atom" in urls


# ---------------------------------------------------------------- feeds that once existed


def test_a_feed_whose_last_item_left_keeps_answering_empty(
    tmp_path: Path, make_settings, store_url: str
) -> None:
    content = tmp_path / "content"
    shutil.copytree(DATA / "readers", content)
    settings = make_settings(content, store_url)
    store = open_store(settings.store.url)
    try:
        Scanner(settings, store, lambda: NOW).run()
        client = create_app(settings, store=store, clock=lambda: NOW).test_client()
        gone = [
            "/feeds/ja/all.rss",  # a language
            "/feeds/all/" + quote("経済") + ".atom",  # a category
            "/feeds/ja/" + quote("経済") + ".json",
            "/feeds/all/author/" + quote("佐藤花子") + ".rss",  # an author
        ]
        before = {path: client.get(path) for path in gone}
        assert all(r.status_code == 200 for r in before.values())
        (content / "ja" / "economy-yen.md").unlink()
        Scanner(settings, store, lambda: NOW).run()
        for path in gone:
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["ETag"] != before[path].headers["ETag"], path
            if path.endswith(".json"):
                assert json.loads(response.data)["items"] == []
                continue
            parsed = feedparser.parse(response.data)
            assert not parsed.bozo and parsed.entries == [], path
            assert parsed.feed.title == feedparser.parse(before[path].data).feed.title
        # Listed nowhere any more: the index, the tag page and the OPML show feeds with items.
        for listing in ("/", "/tags", "/feeds.opml"):
            text = client.get(listing).get_data(as_text=True)
            assert "/feeds/ja/" not in text and quote("経済") not in text, listing
            assert quote("佐藤花子") not in text, listing
        # A feed that never existed is still 404.
        assert client.get("/feeds/fr/all.rss").status_code == 404
        # The store remembers across processes: a new app, same answers.
        fresh = create_app(settings, store=store, clock=lambda: NOW).test_client()
        assert fresh.get(gone[0]).data == client.get(gone[0]).data
    finally:
        store.close()


def test_a_version_1_store_gains_tag_feeds_and_known_feeds_on_open(
    tmp_path: Path, make_settings, store_url: str
) -> None:
    import sqlalchemy as sa

    content = tmp_path / "content"
    shutil.copytree(DATA / "readers", content)
    settings = make_settings(content, store_url)
    store = open_store(settings.store.url)
    Scanner(settings, store, lambda: NOW).run()
    store.close()
    # As feedsvc before tag feeds left it: no item_terms, no known_feeds, version 1.
    engine = sa.create_engine(settings.store.url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE item_terms"))
        conn.execute(sa.text("DROP TABLE known_feeds"))
        conn.execute(sa.text("UPDATE meta SET value = '1' WHERE key = 'schema_version'"))
    engine.dispose()
    store = open_store(settings.store.url)
    try:
        client = create_app(settings, store=store, clock=lambda: NOW).test_client()
        path = "/feeds/all/tag/" + quote("국회") + ".rss"
        assert [e.title for e in feedparser.parse(client.get(path).data).entries] == TERM_FEEDS[
            path
        ]
        (content / "ja" / "economy-yen.md").unlink()
        Scanner(settings, store, lambda: NOW).run()
        assert client.get("/feeds/ja/all.atom").status_code == 200  # remembered by the migration
    finally:
        store.close()


# --------------------------------------------------------------------------- pages


def test_the_index_shows_the_newest_headlines_with_links(client: FlaskClient) -> None:
    page = html.fromstring(client.get("/").data)
    newest = json.loads(client.get("/feeds/all/all.json").data)["items"]
    headlines = page.findall('.//ul[@class="headlines"]/li')
    assert len(headlines) == len(newest) == 6
    for li, item in zip(headlines, newest, strict=True):
        link = li.find(".//h3/a")
        assert link.text_content() == item["title"] and link.get("href") == item["url"]
        time = li.find(".//time")
        # site.timezone (Asia/Seoul): the item's date as written, +09:00, whole seconds.
        published = datetime.fromisoformat(item["date_published"])
        assert datetime.fromisoformat(time.get("datetime")) == published
        assert time.get("datetime").endswith("+09:00") and "." not in time.get("datetime")
        assert time.text == published.strftime("%Y-%m-%d %H:%M")
        assert item["summary"][:40] in li.text_content()
    assert "News Today" in headlines[-1].text_content()  # the category of the oldest
    assert page.findall(".//table//td[@class='fmt']/a")  # and the feed table


def test_the_index_says_when_the_last_scan_failed_and_why_without_paths(
    tmp_path: Path, make_settings, store_url: str
) -> None:
    content = tmp_path / "content"
    shutil.copytree(DATA / "readers", content)
    settings = make_settings(content, store_url)
    store = open_store(settings.store.url)
    try:
        scanner = Scanner(settings, store, lambda: NOW)
        scanner.run()
        shutil.rmtree(content)
        with pytest.raises(ContentRootError):
            scanner.run()
        text = create_app(settings, store=store).test_client().get("/").get_data(as_text=True)
        alert = html.fromstring(text).find('.//p[@class="alert"]')
        assert alert is not None
        words = alert.text_content()
        assert "failed" in words and "2026-01-01 09:00 KST" in words, words
        assert str(tmp_path) not in text and str(content) not in text
        assert "No scan has finished yet" not in text
    finally:
        store.close()


def test_an_item_page_has_one_h1_feed_links_and_card_tags(client: FlaskClient) -> None:
    page = html.fromstring(client.get("/items/000_a08af95bc486be6a").data)
    url = BASE + "/items/000_a08af95bc486be6a"
    assert [h.text_content() for h in page.iter("h1")] == [
        "북한 전원회의로 북러 조약 후속조치 논의"
    ]
    (canonical,) = page.xpath('//head/link[@rel="canonical"]/@href')
    assert canonical == url

    def meta(attribute: str, name: str) -> str:
        (value,) = page.xpath(f'//head/meta[@{attribute}="{name}"]/@content')
        return str(value)

    assert meta("property", "og:title") == "북한 전원회의로 북러 조약 후속조치 논의"
    assert meta("property", "og:url") == url
    assert (
        meta("property", "og:image")
        == "https://newsdao.kr/res/images/meta/newsdao_breakingnews.jpg"
    )
    assert meta("property", "og:description").startswith("김정은, 러시아와 협력 확대")
    assert meta("name", "twitter:card") == "summary_large_image"
    assert meta("name", "twitter:image") == meta("property", "og:image")
    # Links to, and autodiscovery of, its language and category feeds.
    alternates = set(page.xpath('//head/link[@rel="alternate"]/@href'))
    links = {a.get("href") for a in page.iter("a")}
    for path in ("/feeds/ko/all.rss", "/feeds/ko/news.atom", "/feeds/ko/news.json"):
        assert BASE + path in alternates and BASE + path in links, path
    for h in page.iter("time"):
        assert "." not in h.get("datetime") and h.get("datetime").endswith("+09:00")


def test_an_item_page_links_its_tag_and_author_feeds(client: FlaskClient) -> None:
    page = html.fromstring(client.get("/items/politics/budget-2025").data)
    alternates = set(page.xpath('//head/link[@rel="alternate"]/@href'))
    for path in (
        "/feeds/ko/" + quote("정치") + ".rss",
        "/feeds/ko/tag/" + quote("국회") + ".rss",
        "/feeds/ko/tag/" + quote("예산") + ".atom",
        "/feeds/ko/author/" + quote("김민지-기자") + ".json",
    ):
        assert BASE + path in alternates, path
        assert client.get(path).status_code == 200, path  # every advertised feed answers
    assert len(page.findall(".//h1")) == 1
    # A body that opens with the title's own <h1> does not repeat it; other
    # body headings stay, one level down.
    en = html.fromstring(client.get("/items/world/markets-and-more").data)
    assert len(en.findall(".//h1")) == 1


def test_a_body_that_repeats_the_title_as_h1_shows_it_once(
    tmp_path: Path, make_settings, store_url: str
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "same.md").write_text(
        "---\ntitle: Rates rise again\ndate: 2024-12-01 10:00\n---\n"
        "# Rates rise again\n\nThe bank raised rates.\n\n# Why it matters\n\nLoans cost more.\n",
        encoding="utf-8",
    )
    settings = make_settings(content, store_url)
    store = open_store(settings.store.url)
    try:
        Scanner(settings, store, lambda: NOW).run()
        client = create_app(settings, store=store, clock=lambda: NOW).test_client()
        page = html.fromstring(client.get("/items/same").data)
        assert [h.text_content() for h in page.iter("h1")] == ["Rates rise again"]
        assert [h.text_content() for h in page.find(".//article").iter("h2")] == ["Why it matters"]
        assert "The bank raised rates." in page.find(".//article").text_content()
    finally:
        store.close()


def test_tag_feeds_stay_within_their_cache_budget(
    tmp_path: Path, make_settings, store_url: str
) -> None:
    """Rendered on first request, kept within feeds.term_cache_bytes, least recent out."""
    content = tmp_path / "content"
    shutil.copytree(DATA / "readers", content)
    budget = 6_000  # about two of these small feeds (body + gzip)
    settings = make_settings(content, store_url, feeds_term_cache_bytes=str(budget))
    store = open_store(settings.store.url)
    try:
        Scanner(settings, store, lambda: NOW).run()
        app = create_app(settings, store=store, clock=lambda: NOW)
        client = app.test_client()
        cache = app.extensions["feedsvc"].feeds
        assert cache.term_cache_stats() == (0, 0)  # nothing rendered at start-up
        first = {path: client.get(path).data for path in TERM_FEEDS}
        kept, kept_bytes = cache.term_cache_stats()
        assert 0 < kept < len(TERM_FEEDS) and kept_bytes <= budget
        # Evicted or not, every answer is the same feed.
        assert {path: client.get(path).data for path in TERM_FEEDS} == first
        assert cache.term_cache_stats()[1] <= budget
    finally:
        store.close()
