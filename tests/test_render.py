"""Feed rendering: goldens, what readers see, validity, determinism, any text.

Goldens live in ``tests/golden/`` in canonical form (XML C14N, JSON with
sorted keys). Regenerate them only on purpose and review the diff:

    UPDATE_GOLDENS=1 pytest tests/test_render.py

Every golden is also read back with feedparser (RSS, Atom) or checked field
by field (JSON), so a golden cannot lock in a bug.
"""

from __future__ import annotations

import ast
import json
import locale
import re
from calendar import timegm
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import feedparser
import jsonschema
import pytest
from conftest import GOLDEN, assert_golden
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.dates import EPOCH
from feedsvc.render import FORMATS, FORMATS_BY_NAME, FeedDocument, atom, rss
from feedsvc.render._feedgen import FeedBuilder
from feedsvc.text import collapse_whitespace, xml_safe
from feedsvc.types import Category, FeedKey, Item

SCHEMA = Path(__file__).parent / "data" / "jsonfeed-1.1.schema.json"

ATOM_NS = "http://www.w3.org/2005/Atom"
A = f"{{{ATOM_NS}}}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
DC = "{http://purl.org/dc/elements/1.1/}"
MEDIA = "{http://search.yahoo.com/mrss/}"
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)

KST = timezone(timedelta(hours=9))
BASE = "https://news.example.com"
PREFIX = "tag:news.example.com,2024:"
HUBS = (f"{BASE}/websub", "https://hub.example.net/")
SUFFIX = {"rss": "rss", "atom": "atom", "json": "json"}

POLITICS = Category(name="정치", slug="정치")
NEWS_TODAY = Category(name="News Today", slug="news-today")
ECONOMY = Category(name="経済", slug="経済")


def make_item(**fields: Any) -> Item:
    base: dict[str, Any] = {
        "source_path": f"{fields['id']}.md",
        "url": f"{BASE}/items/{fields['id']}",
        "guid": PREFIX + fields["id"],
        "summary": "",
        "content_text": "",
        "tags": (),
        "image": None,
        "authors": (),
    }
    return Item(**{**base, **fields})


# Newest first by published, as the store hands them over. The newest *updated*
# is the English item (a late correction), not the first one: the feed date
# must be the max, not the first item's.
KO_TREATY = make_item(
    id="politics/treaty",
    title="북한, 러시아와 조약 비준",
    summary="북한이 러시아와의 포괄적 전략 동반자 조약을 비준했다.",
    content_html="<p>북한이 러시아와의 <b>포괄적 전략 동반자 조약</b>을 비준했다.</p>",
    content_text="북한이 러시아와의 포괄적 전략 동반자 조약을 비준했다.",
    language="ko",
    categories=(POLITICS,),
    tags=("북한", "러시아"),
    image=f"{BASE}/media/treaty.jpg",
    authors=("김기자",),
    published=datetime(2024, 11, 14, 9, 0, tzinfo=KST),
    updated=datetime(2024, 11, 14, 10, 30, tzinfo=KST),
)
KO_BUDGET = make_item(
    id="politics/budget",
    title="국회, 예산안 심사 착수",
    content_html="<p>국회가 내년도 예산안 심사에 들어갔다.</p>",
    language="ko",
    categories=(POLITICS, NEWS_TODAY),
    tags=("정치", "예산"),  # "정치" repeats a category name: listed once
    published=datetime(2024, 11, 13, 20, 15, tzinfo=KST),
    updated=datetime(2024, 11, 13, 20, 15, tzinfo=KST),
)
EN_TRANSCRIPT = make_item(
    id="002_ad53fbf95e7bb634",
    title="N. KOREA RATIFIES TREATY WITH RUSSIA",
    summary="Following Russian President Vladimir Putin, North Korea's leader signed the treaty.",
    content_html=(
        "<p>Following Russian President Vladimir Putin, North Korea's leader signed the"
        " treaty into law.</p><blockquote><p>The treaty takes effect today.</p>"
        "<cite>N. Korean Central TV</cite></blockquote>"
    ),
    content_text="Following Russian President Vladimir Putin, North Korea's leader signed the "
    "treaty into law.\n\nThe treaty takes effect today. (N. Korean Central TV)",
    language="en",
    categories=(NEWS_TODAY,),
    authors=("Arirang News", "Park Won-gon"),
    published=datetime(2024, 11, 13, 15, 42, 35, tzinfo=KST),
    updated=datetime(2024, 11, 15, 8, 0, 0, tzinfo=KST),
)
JA_RATES = make_item(
    id="boj-rates",
    url="https://example.jp/articles/42",
    guid="https://example.jp/articles/42",  # guid IS the url: a permalink
    title="日銀、金利を据え置き",
    summary="日本銀行は政策金利を据え置いた。",
    content_html="<p>日本銀行は政策金利を<em>据え置いた</em>。</p>",
    content_text="日本銀行は政策金利を据え置いた。",
    language="ja",
    categories=(ECONOMY,),
    image="https://example.jp/img/boj.webp",
    authors=("山田",),
    published=datetime(2024, 11, 12, 23, 0, tzinfo=UTC),
    updated=datetime(2024, 11, 13, 1, 0, 30, 250_000, tzinfo=UTC),  # fraction dropped
)
ALL_ITEMS = (KO_TREATY, KO_BUDGET, EN_TRANSCRIPT, JA_RATES)


def make_doc(language: str, category: str, items: tuple[Item, ...], fmt: str) -> FeedDocument:
    stem = f"{language}/{category}"
    return FeedDocument(
        key=FeedKey(language=language, category=category),
        title=f"Example News: {stem}",
        description=f"Items in {stem}",
        feed_id=f"{PREFIX}feeds/{stem}",
        self_url=f"{BASE}/feeds/{stem}.{SUFFIX[fmt]}",
        home_url=f"{BASE}/",
        language=None if language == "all" else language,
        author="Example Newsroom",
        ttl_minutes=5,
        items=items,
        hubs=HUBS,
        stylesheet="/feed.xsl",  # the XSLT for browsers (docs/feeds-for-people.md)
    )


DOCS = {
    "all_all": ("all", "all", ALL_ITEMS),
    "ko_politics": ("ko", "정치", (KO_TREATY, KO_BUDGET)),
}
CASES = [(name, fmt) for name in DOCS for fmt in ("rss", "atom", "json")]


def doc_for(name: str, fmt: str) -> FeedDocument:
    language, category, items = DOCS[name]
    return make_doc(language, category, items, fmt)


# ----------------------------------------------------------------- helpers


def canonical(fmt: str, data: bytes) -> str:
    if fmt == "json":
        return json.dumps(json.loads(data), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    # The whole document, processing instructions included: C14N of the root
    # element alone mis-scopes namespaces (xmlns="") once a PI precedes it.
    tree = etree.fromstring(data, STRICT).getroottree()
    return etree.tostring(tree, method="c14n").decode("utf-8") + "\n"


def golden_path(name: str, fmt: str) -> Path:
    return GOLDEN / f"{name}.{fmt}{'' if fmt == 'json' else '.xml'}"


def as_uri(iri: str) -> str:
    """RFC 3987 §3.1, independently of the renderer: non-ASCII to UTF-8 %XX."""
    return quote(iri, safe=":/?#[]@!$&'()*+,;=%-._~")


def utc_tuple(value: datetime) -> tuple[int, ...]:
    return tuple(value.astimezone(UTC).timetuple())[:6]


def struct_tuple(value: Any) -> tuple[int, ...]:
    return tuple(value)[:6]


def expected_tags(item: Item) -> list[str]:
    return list(dict.fromkeys([c.name for c in item.categories] + list(item.tags)))


def strict_json(data: bytes) -> Any:
    def refuse(name: str) -> None:
        raise ValueError(f"non-JSON constant {name}")

    return json.loads(data.decode("utf-8"), parse_constant=refuse)


def no_nulls(value: Any, path: str = "$") -> None:
    assert value is not None, f"null at {path}"
    if isinstance(value, dict):
        for key, child in value.items():
            no_nulls(child, f"{path}.{key}")
    elif isinstance(value, list):
        for index, child in enumerate(value):
            no_nulls(child, f"{path}[{index}]")


# ----------------------------------------------------------------- registry


def test_registry_names_media_types() -> None:
    assert [f.name for f in FORMATS] == ["rss", "atom", "json"]
    assert FORMATS_BY_NAME["rss"].content_type == "application/rss+xml; charset=utf-8"
    assert FORMATS_BY_NAME["atom"].media_type == "application/atom+xml"
    assert FORMATS_BY_NAME["json"].media_type == "application/feed+json"
    assert all(f.label for f in FORMATS)


# ----------------------------------------------------------------- goldens


@pytest.mark.parametrize(("name", "fmt"), CASES)
def test_golden(name: str, fmt: str) -> None:
    got = canonical(fmt, FORMATS_BY_NAME[fmt].render(doc_for(name, fmt)))
    assert_golden(golden_path(name, fmt), got)


def golden_bytes(name: str, fmt: str) -> bytes:
    """The golden file itself (what readers are checked against)."""
    path = golden_path(name, fmt)
    if not path.exists():
        pytest.skip(f"{path.name} not generated yet")
    return path.read_bytes()


@pytest.mark.parametrize("name", list(DOCS))
@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_golden_reads_right_in_feedparser(name: str, fmt: str) -> None:
    doc = doc_for(name, fmt)
    parsed = feedparser.parse(golden_bytes(name, fmt))
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == ("rss20" if fmt == "rss" else "atom10")

    feed = parsed.feed
    assert feed.title == doc.title
    assert feed.link == doc.home_url
    assert struct_tuple(feed.updated_parsed) == utc_tuple(
        EN_TRANSCRIPT.updated if name == "all_all" else KO_TREATY.updated
    )
    assert feed.get("language") == doc.language
    self_links = [link.href for link in feed.links if link.rel == "self"]
    assert self_links == [as_uri(doc.self_url)]
    # WebSub §4 discovery: every hub beside the self link, in RSS (atom:link) and Atom.
    assert [link.href for link in feed.links if link.rel == "hub"] == list(HUBS)

    assert [e.id for e in parsed.entries] == [item.guid for item in doc.items]
    for entry, item in zip(parsed.entries, doc.items, strict=True):
        assert entry.title == item.title
        assert entry.link == item.url
        assert struct_tuple(entry.published_parsed) == utc_tuple(item.published)
        assert entry.content[0].value == item.content_html
        if item.authors:
            assert [a.name for a in entry.authors] == list(item.authors)
        else:
            assert "authors" not in entry
        if fmt == "rss":
            assert entry.language == item.language  # dc:language
            assert [t.term for t in entry.tags] == expected_tags(item)
            # The summary as escaped HTML, else the full HTML.
            assert entry.summary == (
                escape(item.summary, quote=False) if item.summary else item.content_html
            )
            images = [m["url"] for m in entry.get("media_content", [])]
            assert entry.get("enclosures") == []
        else:
            assert struct_tuple(entry.updated_parsed) == utc_tuple(
                item.updated.replace(microsecond=0)
            )
            assert entry.title_detail.language == item.language  # per-entry xml:lang
            slugs = [c.slug for c in item.categories]
            extra = [t for t in item.tags if t not in {c.name for c in item.categories}]
            assert [t.term for t in entry.tags] == slugs + extra
            assert [t.label for t in entry.tags][: len(slugs)] == [c.name for c in item.categories]
            if item.summary:  # (feedparser fills a missing summary from content)
                assert entry.summary == item.summary
            images = [e.href for e in entry.get("enclosures", [])]
        assert images == ([item.image] if item.image else [])


@pytest.mark.parametrize("name", list(DOCS))
def test_golden_json_says_what_the_items_say(name: str) -> None:
    doc = doc_for(name, "json")
    feed = strict_json(golden_bytes(name, "json"))
    jsonschema.validate(feed, json.loads(SCHEMA.read_text(encoding="utf-8")))
    no_nulls(feed)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == doc.title
    assert feed["hubs"] == [{"type": "WebSub", "url": hub} for hub in HUBS]
    assert feed["home_page_url"] == doc.home_url
    assert feed["feed_url"] == as_uri(doc.self_url)
    assert feed.get("language") == doc.language
    assert feed["authors"] == [{"name": doc.author}]
    ids = [entry["id"] for entry in feed["items"]]
    assert ids == [item.guid for item in doc.items]
    assert len(set(ids)) == len(ids)
    for entry, item in zip(feed["items"], doc.items, strict=True):
        assert entry["url"] == item.url
        assert entry["title"] == item.title
        assert entry.get("summary", "") == item.summary
        assert entry["content_html"] == item.content_html
        assert entry.get("content_text", "") == item.content_text
        assert entry.get("image") == item.image
        published = datetime.fromisoformat(entry["date_published"])
        modified = datetime.fromisoformat(entry["date_modified"])
        assert published == item.published and published.utcoffset() == item.published.utcoffset()
        assert modified == item.updated.replace(microsecond=0)
        assert entry.get("tags", []) == expected_tags(item)
        assert [a["name"] for a in entry.get("authors", [])] == list(item.authors)
        assert entry["language"] == item.language


# ----------------------------------------------------------------- RSS details


def rss_tree(doc: FeedDocument) -> etree._Element:
    return etree.fromstring(rss.render(doc), STRICT)


def test_rss_channel() -> None:
    doc = doc_for("all_all", "rss")
    channel = rss_tree(doc).find("channel")
    assert channel is not None
    # The channel <link> is the home page, although feedgen takes the LAST link() call.
    assert channel.findtext("link") == doc.home_url
    self_links = channel.findall(f"{A}link")
    assert [(x.get("rel"), x.get("type"), x.get("href")) for x in self_links] == [
        ("self", "application/rss+xml", as_uri(doc.self_url)),
        *[("hub", None, hub) for hub in HUBS],  # WebSub §4, right after self
    ]
    assert channel.findtext("generator") == "feedsvc"
    assert channel.findtext("ttl") == "5"
    assert channel.find("language") is None  # the "all" column has no single language
    assert channel.findtext("lastBuildDate") == "Fri, 15 Nov 2024 08:00:00 +0900"
    assert rss_tree(doc_for("ko_politics", "rss")).findtext("channel/language") == "ko"


def test_rss_items() -> None:
    doc = doc_for("all_all", "rss")
    items = rss_tree(doc).findall("channel/item")
    assert len(items) == len(doc.items)
    for element, item in zip(items, doc.items, strict=True):
        pub_date = element.findtext("pubDate") or ""
        # RFC 822 with the item's own offset and a weekday that matches the date.
        parsed = parsedate_to_datetime(pub_date)
        assert parsed == item.published
        assert parsed.utcoffset() == item.published.utcoffset()
        assert (
            pub_date[:5]
            == ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[item.published.weekday()] + ", "
        )
        guid = element.find("guid")
        assert guid is not None and guid.text == item.guid
        assert guid.get("isPermaLink") == ("true" if item.guid == item.url else "false")
        # <author> must be an e-mail address: names go in dc:creator.
        assert element.find("author") is None
        assert [c.text for c in element.findall(f"{DC}creator")] == list(item.authors)
        assert element.find("enclosure") is None  # would need a real length > 0
        media = element.findall(f"{MEDIA}content")
        assert [(m.get("url"), m.get("medium")) for m in media] == (
            [(item.image, "image")] if item.image else []
        )
    assert items[0].find(f"{MEDIA}content").get("type") == "image/jpeg"  # type: ignore[union-attr]
    assert items[3].find(f"{MEDIA}content").get("type") == "image/webp"  # type: ignore[union-attr]
    assert [e.findtext("pubDate") for e in items][-1] == "Tue, 12 Nov 2024 23:00:00 +0000"


def test_rss_never_touches_the_process_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    """feedgen's formatRFC2822 flips the global locale; the adapter avoids it."""

    def refuse(*args: object) -> str:
        raise AssertionError("locale.setlocale called while rendering")

    monkeypatch.setattr(locale, "setlocale", refuse)
    for fmt in FORMATS:
        fmt.render(doc_for("all_all", fmt.name))


# ----------------------------------------------------------------- Atom structure


def test_atom_structure() -> None:
    for name in DOCS:
        doc = doc_for(name, "atom")
        feed = etree.fromstring(atom.render(doc), STRICT)
        assert feed.tag == f"{A}feed"
        assert feed.get(XML_LANG) == doc.language
        for tag in ("id", "title", "updated"):
            assert len(feed.findall(f"{A}{tag}")) == 1, tag
        assert feed.findtext(f"{A}id") == doc.feed_id
        assert (
            feed.findtext(f"{A}updated")
            == max(i.updated for i in doc.items).replace(microsecond=0).isoformat()
        )
        links = [(x.get("rel"), x.get("type"), x.get("href")) for x in feed.findall(f"{A}link")]
        assert links == [
            ("self", "application/atom+xml", as_uri(doc.self_url)),
            *[("hub", None, hub) for hub in HUBS],  # WebSub §4
            ("alternate", "text/html", doc.home_url),
        ]
        generator = feed.find(f"{A}generator")
        assert generator is not None and generator.text == "feedsvc"
        assert generator.get("version") is None
        assert feed.findtext(f"{A}author/{A}name") == doc.author
        entries = feed.findall(f"{A}entry")
        assert len(entries) == len(doc.items)
        for entry, item in zip(entries, doc.items, strict=True):
            assert entry.get(XML_LANG) == item.language
            for tag in ("id", "title", "updated", "published", "content"):
                assert len(entry.findall(f"{A}{tag}")) == 1, tag
            assert entry.find(f"{A}content").get("type") == "html"  # type: ignore[union-attr]
            summary = entry.find(f"{A}summary")
            assert summary is None or summary.get("type") == "text"
            alternates = [x for x in entry.findall(f"{A}link") if x.get("rel") == "alternate"]
            assert [x.get("href") for x in alternates] == [item.url]
            enclosures = [x for x in entry.findall(f"{A}link") if x.get("rel") == "enclosure"]
            assert [x.get("href") for x in enclosures] == ([item.image] if item.image else [])
            assert all(x.get("rel") for x in entry.findall(f"{A}link"))
            assert entry.findtext(f"{A}published") == item.published.isoformat()


# ----------------------------------------------------------------- determinism


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_same_document_same_bytes(fmt: str) -> None:
    render = FORMATS_BY_NAME[fmt].render
    first = render(doc_for("all_all", fmt))
    assert render(doc_for("all_all", fmt)) == first
    assert render(replace(doc_for("all_all", fmt))) == first
    assert first.startswith(b"<?xml version='1.0' encoding='UTF-8'?>") or fmt == "json"


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_every_date_comes_from_the_data(fmt: str) -> None:
    """No clock: every date in the output is an item date (or the empty-feed epoch)."""
    data = FORMATS_BY_NAME[fmt].render(doc_for("all_all", fmt)).decode("utf-8")
    allowed = {utc_tuple(i.published) for i in ALL_ITEMS} | {
        utc_tuple(i.updated) for i in ALL_ITEMS
    }
    if fmt == "rss":
        found = [
            parsedate_to_datetime(d)
            for d in re.findall(r"<(?:pubDate|lastBuildDate)>([^<]+)<", data)
        ]
    else:
        found = [
            datetime.fromisoformat(d)
            for d in re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", data)
        ]
    assert len(found) >= len(ALL_ITEMS) + (1 if fmt != "json" else 0)
    assert {utc_tuple(d) for d in found} <= allowed


def test_order_is_the_documents_order() -> None:
    reversed_doc = replace(doc_for("all_all", "atom"), items=tuple(reversed(ALL_ITEMS)))
    feed = etree.fromstring(atom.render(reversed_doc), STRICT)
    assert [e.findtext(f"{A}id") for e in feed.findall(f"{A}entry")] == [
        i.guid for i in reversed(ALL_ITEMS)
    ]


def test_feed_date_is_the_newest_updated_whatever_the_order() -> None:
    """Same instant, two offsets: the feed shows the same one in any item order."""
    tied = replace(KO_BUDGET, id="zz-tied", updated=EN_TRANSCRIPT.updated.astimezone(UTC))
    items = (*ALL_ITEMS, tied)
    dates = set()
    for order in (items, tuple(reversed(items))):
        feed = etree.fromstring(atom.render(replace(doc_for("all_all", "atom"), items=order)))
        dates.add(feed.findtext(f"{A}updated"))
    assert dates == {"2024-11-14T23:00:00+00:00"}  # EN_TRANSCRIPT's instant, tied's offset


def test_format_modules_never_import_the_render_package_init() -> None:
    """The registry imports the formats; the formats import ``render.model`` instead."""
    package = Path(__file__).parent.parent / "feedsvc" / "render"
    for path in sorted(package.glob("*.py")):
        if path.name == "__init__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "feedsvc.render":
                raise AssertionError(f"{path.name} imports from feedsvc.render's __init__")
            if isinstance(node, ast.Import):
                assert all(alias.name != "feedsvc.render" for alias in node.names), path.name


# ----------------------------------------------------------------- edge cases


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_empty_feed(fmt: str) -> None:
    doc = replace(doc_for("all_all", fmt), items=())
    data = FORMATS_BY_NAME[fmt].render(doc)
    assert FORMATS_BY_NAME[fmt].render(doc) == data
    if fmt == "json":
        feed = strict_json(data)
        jsonschema.validate(feed, json.loads(SCHEMA.read_text(encoding="utf-8")))
        assert feed["items"] == []
        return
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0
    assert parsed.entries == []
    assert struct_tuple(parsed.feed.updated_parsed) == utc_tuple(EPOCH)


def test_one_broken_entry_does_not_kill_the_feed(caplog: pytest.LogCaptureFixture) -> None:
    """Should feedgen still refuse an entry, only that entry is dropped (and logged)."""
    doc = doc_for("all_all", "atom")
    builder = FeedBuilder(doc, "atom", self_type="application/atom+xml")
    when = datetime(2024, 1, 1, tzinfo=UTC)
    for key, entry_title in (("good", "fine"), ("bad", "nul\x00byte")):
        fe = builder.entry(key, published=when, updated=when)
        fe.id(f"{PREFIX}{key}")
        fe.title(entry_title)  # bypasses xml_safe on purpose
        fe.content("x", type="html")
    data = builder.to_bytes()
    ids = [e.findtext(f"{A}id") for e in etree.fromstring(data, STRICT).findall(f"{A}entry")]
    assert ids == [f"{PREFIX}good"]
    assert "dropped item bad" in caplog.text


def test_hostile_fields_are_made_safe() -> None:
    item = replace(
        KO_TREATY,
        title="  \x0b  ",
        summary="a\x00b\ud800c",
        content_html="<p>]]></content>\x1f</p>",
        authors=("", "  Kim \t Lee "),
        categories=(Category(name="", slug=""), POLITICS),
        tags=("", " 정치 "),
        image="https://img.example.com/noext",
    )
    for fmt in FORMATS:
        doc = replace(doc_for("all_all", fmt.name), items=(item,))
        data = fmt.render(doc)
        if fmt.name == "json":
            entry = strict_json(data)["items"][0]
            assert entry["title"] == "(untitled)"
            assert entry["summary"] == "abc"
            assert entry["authors"] == [{"name": "Kim Lee"}]
            assert entry["tags"] == ["정치"]
            continue
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0
        assert parsed.entries[0].title == "(untitled)"


def test_links_are_uris_and_ids_stay_as_written() -> None:
    """RSS <link> and media url must be URIs; ids are compared as written."""
    item = replace(
        KO_TREATY,
        id="정치/기사",
        guid=f"{PREFIX}정치/기사",
        url=f"{BASE}/items/정치/기사 1",
        image=f"{BASE}/media/사진.png",
    )
    url = f"{BASE}/items/%EC%A0%95%EC%B9%98/%EA%B8%B0%EC%82%AC%201"
    image = f"{BASE}/media/%EC%82%AC%EC%A7%84.png"
    assert as_uri(item.url) == url
    for fmt in FORMATS:
        doc = replace(doc_for("ko_politics", fmt.name), items=(item,))
        data = fmt.render(doc)
        if fmt.name == "json":
            entry = strict_json(data)["items"][0]
            assert (entry["id"], entry["url"], entry["image"]) == (item.guid, url, image)
            continue
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0
        entry = parsed.entries[0]
        assert (entry.id, entry.link) == (item.guid, url)
        assert as_uri(doc.self_url) in [link.href for link in parsed.feed.links]
        assert "%EC%A0%95%EC%B9%98" in as_uri(doc.self_url)
        if fmt.name == "rss":
            assert entry.media_content[0]["url"] == image
            assert parsed.entries[0].guidislink is False
        else:
            assert entry.enclosures[0].href == image


# ----------------------------------------------------------------- any text

# fmt: off
SPECIALS = [
    "\x00", "\x0b", "\x1f", "\x7f", "\x85", "\ud800", "\udfff", "\ufffe", "\uffff", "\ufdd0",
    "\u200f", "\u202e", "\u2028", "🙂", "👩‍👩‍👧", "]]>", "</content>", "</title>", "<![CDATA[",
    "&amp;", "&", "<", ">", '"', "'", "\r\n", "\r", "\t", " ", "&#0;", "<script>x</script>",
]
# fmt: on
TEXT = st.lists(
    st.one_of(st.text(st.characters(exclude_categories=())), st.sampled_from(SPECIALS)),
    max_size=6,
).map("".join)


@st.composite
def hostile_items(draw: st.DrawFn) -> tuple[Item, ...]:
    count = draw(st.integers(min_value=1, max_value=5))
    items = []
    for index in range(count):
        published = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=count - index)
        items.append(
            make_item(
                id=f"any/{index}",
                title=draw(TEXT),
                summary=draw(TEXT),
                content_html=draw(TEXT),
                content_text=draw(TEXT),
                language=draw(st.sampled_from(["ko", "en", "ja", ""])),
                categories=(Category(name=draw(TEXT), slug=draw(TEXT)),),
                tags=tuple(draw(st.lists(TEXT, max_size=2))),
                authors=tuple(draw(st.lists(TEXT, max_size=2))),
                image=draw(st.sampled_from([None, f"{BASE}/a.png", ""])),
                published=published,
                updated=published + timedelta(minutes=draw(st.integers(0, 90))),
            )
        )
    return tuple(items)


def expected_title(value: str) -> str:
    return collapse_whitespace(xml_safe(value)) or "(untitled)"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=hostile_items(), feed_title=TEXT)
def test_any_text_renders_and_parses(items: tuple[Item, ...], feed_title: str) -> None:
    titles = [expected_title(item.title) for item in items]
    for fmt in FORMATS:
        doc = replace(doc_for("all_all", fmt.name), title=feed_title, items=items)
        data = fmt.render(doc)
        if fmt.name == "json":
            feed = strict_json(data)
            no_nulls(feed)
            assert [entry["title"] for entry in feed["items"]] == titles
            assert feed["title"] == (collapse_whitespace(xml_safe(feed_title)) or "feedsvc")
            continue
        root = etree.fromstring(data, STRICT)
        if fmt.name == "rss":
            got = [e.findtext("title") for e in root.findall("channel/item")]
        else:
            got = [e.findtext(f"{A}title") for e in root.findall(f"{A}entry")]
        assert got == titles
        parsed = feedparser.parse(data)
        assert parsed.bozo == 0, (fmt.name, parsed.get("bozo_exception"))
        assert len(parsed.entries) == len(items)
        assert [e.id for e in parsed.entries] == [item.guid for item in items]
        for entry, item in zip(parsed.entries, items, strict=True):
            assert timegm(entry.published_parsed) == int(item.published.timestamp())
