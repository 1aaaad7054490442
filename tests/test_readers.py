"""Proof where users are: validators, real feed readers and a real browser.

One real ``feedsvc serve`` on 127.0.0.1 serves ``tests/data/readers/`` (both
sample formats, ko/en/ja, categories ``News``, ``News Today``, ``World``, ``정치``
and ``経済``, images, a Hangul file name and a draft that must never show). Every
feed of the grid, as listed on ``/``, is then checked by:

- **jing** against the RELAX NG schema of RFC 4287 Appendix B
  (``tests/data/atom.rnc``), plus the rules the schema cannot express;
- the **JSON Feed 1.1** schema (``tests/data/jsonfeed-1.1.schema.json``) plus
  unique ids, real calendar dates, absolute URLs and no NaN;
- the **RSS 2.0** rules (required channel elements, RFC 822 dates with the
  right weekday, unique guids, absolute links, ``atom:link rel="self"``);
- **feedparser**, the **reader** library and **newsboat** (headless, its SQLite
  cache read back, also importing ``/feeds.opml``);
- **Chromium** (Debian's, driven by Playwright): autodiscovery links, subscribe
  links, Korean text on an item page; screenshots go to ``artifacts/screenshots/``.

External tools (jing, newsboat, chromium, playwright) skip locally when
missing, with the reason; on CI (``CI=true``) a missing tool is a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import feedparser
import jsonschema
import pytest
import requests
from conftest import DATA, RunningServer, feedsvc_env
from lxml import etree, html

READERS = DATA / "readers"
ATOM_RNC = DATA / "atom.rnc"
JSON_SCHEMA = DATA / "jsonfeed-1.1.schema.json"
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"

BASE = "https://news.example.com"
TOKEN = "readers-token"
DRAFT_MARK = "DRAFT-SECRET-7f3a"
CHROMIUM = "/usr/bin/chromium"

ATOM = "{http://www.w3.org/2005/Atom}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
STRICT = etree.XMLParser(recover=False, resolve_entities=False, no_network=True)
FEED_TYPES = {
    "rss": "application/rss+xml; charset=utf-8",
    "atom": "application/atom+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}

# Every (language, category) the fixture must produce, with its item count.
EXPECTED_GRID = {
    ("all", "all"): 6,
    ("all", "news"): 1,
    ("all", "news-today"): 2,
    ("all", "world"): 1,
    ("all", "정치"): 2,
    ("all", "経済"): 1,
    ("ko", "all"): 3,
    ("ko", "news"): 1,
    ("ko", "정치"): 2,
    ("en", "all"): 2,
    ("en", "news-today"): 2,
    ("en", "world"): 1,
    ("ja", "all"): 1,
    ("ja", "経済"): 1,
}

# Tag and author feeds (listed on /tags), keyed like the grid: "tag/{slug}", "author/{slug}".
# Items without an author carry site.author ("feedsvc" in the test settings).
EXPECTED_TERMS = {
    ("all", "tag/markets"): 1,
    ("en", "tag/markets"): 1,
    ("all", "tag/trade"): 1,
    ("en", "tag/trade"): 1,
    ("all", "tag/국회"): 1,
    ("ko", "tag/국회"): 1,
    ("all", "tag/예산"): 1,
    ("ko", "tag/예산"): 1,
    ("all", "author/feedsvc"): 3,
    ("en", "author/feedsvc"): 1,
    ("ko", "author/feedsvc"): 2,
    ("all", "author/jane-doe"): 1,
    ("en", "author/jane-doe"): 1,
    ("all", "author/john-roe"): 1,
    ("en", "author/john-roe"): 1,
    ("all", "author/佐藤花子"): 1,
    ("ja", "author/佐藤花子"): 1,
    ("all", "author/김민지-기자"): 1,
    ("ko", "author/김민지-기자"): 1,
}
EXPECTED = {**EXPECTED_GRID, **EXPECTED_TERMS}  # every feed the site lists

SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
RFC822 = re.compile(
    r"^(?P<wd>Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} ([+-]\d{4}|GMT|UT)$"
)


# --------------------------------------------------------------------------- tools


def need_tool(name: str, path: str | None = None) -> str:
    """The path of an external tool; missing is a skip locally, a failure on CI."""
    found = path if path and os.access(path, os.X_OK) else shutil.which(name)
    if found:
        return found
    reason = f"{name} is not installed (bash .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def need_module(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:
        reason = f"Python package {name} is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


# --------------------------------------------------------------------------- the site


@dataclass
class Feed:
    language: str
    category: str
    fmt: str
    path: str  # as linked from the index, percent-encoded
    content_type: str
    body: bytes
    expected: int | None = None  # items it must hold; None: EXPECTED says


def expected_count(feed: Feed) -> int:
    return EXPECTED[feed.language, feed.category] if feed.expected is None else feed.expected


@dataclass
class Site:
    server: RunningServer
    index_html: str
    opml: str
    feeds: list[Feed] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)  # of the first refresh

    @property
    def url(self) -> str:
        return self.server.url

    def local(self, public_url: str) -> str:
        """A public URL (on ``site.base_url``) mapped onto the test server."""
        assert public_url.startswith(BASE + "/"), public_url
        return self.url + public_url.removeprefix(BASE)

    def of(self, fmt: str) -> list[Feed]:
        return [f for f in self.feeds if f.fmt == fmt]

    def json_items(self, language: str, category: str) -> list[dict[str, Any]]:
        feed = next(
            f for f in self.feeds if (f.language, f.category, f.fmt) == (language, category, "json")
        )
        items: list[dict[str, Any]] = json.loads(feed.body)["items"]
        return items


def _parse_feed_path(path: str) -> tuple[str, str, str]:
    match = re.fullmatch(r"/feeds/([^/]+)/((?:tag/|author/)?[^/]+)\.(rss|atom|json)", path)
    assert match, path
    return unquote(match.group(1)), unquote(match.group(2)), match.group(3)


def open_site(tmp: Path, content: Path, **env: str) -> Site:
    """A real ``feedsvc serve`` on ``content``, refreshed once, with every feed that
    ``/`` and ``/tags`` link to fetched. The caller stops ``site.server``."""
    environ = {
        **os.environ,
        **feedsvc_env(tmp, content, server_workers="2", server_refresh_token=TOKEN, **env),
    }
    server = RunningServer(["--no-watch"], environ, tmp)
    try:
        report = requests.post(
            server.url + "/api/refresh",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=120,
        ).json()
        index = requests.get(server.url + "/", timeout=30)
        opml = requests.get(server.url + "/feeds.opml", timeout=30)
        tags = requests.get(server.url + "/tags", timeout=30)
        assert index.status_code == opml.status_code == tags.status_code == 200
        result = Site(server, index.text, opml.text, report=report)
        links = [
            link
            for page in (index, tags)
            for link in html.fromstring(page.content).xpath('//head/link[@rel="alternate"]')
        ]
        for link in links:
            href = link.get("href")
            path = href.removeprefix(BASE)
            language, category, fmt = _parse_feed_path(path)
            response = requests.get(server.url + path, timeout=30)
            assert response.status_code == 200, path
            result.feeds.append(
                Feed(
                    language,
                    category,
                    fmt,
                    path,
                    response.headers["Content-Type"],
                    response.content,
                )
            )
    except BaseException:
        server.stop()
        raise
    return result


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("readers")
    content = tmp / "content"
    shutil.copytree(READERS, content)
    result = open_site(tmp, content)
    try:
        assert result.report["errors"] == [], result.report
        # six items and the draft, kept out of feeds
        assert result.report["added"] == 7, result.report
        yield result
    finally:
        result.server.stop()


# --------------------------------------------------------------------------- the grid


def test_the_grid_lists_every_feed_and_never_the_draft(site: Site) -> None:
    keys = Counter((f.language, f.category) for f in site.feeds)
    assert set(keys) == set(EXPECTED)
    assert set(keys.values()) == {3}  # rss, atom and json for each
    for feed in site.feeds:
        assert feed.content_type == FEED_TYPES[feed.fmt], feed.path
        if feed.fmt == "json":
            count = len(json.loads(feed.body)["items"])
            assert count == EXPECTED[feed.language, feed.category], feed.path

    pages = [site.index_html, site.opml] + [f.body.decode("utf-8") for f in site.feeds]
    for page in pages:
        assert DRAFT_MARK not in page
        assert "drafts/unreleased" not in page
    assert requests.get(site.url + "/items/drafts/unreleased", timeout=30).status_code == 404


# --------------------------------------------------------------------------- Atom


def _absolute_iri(value: str) -> bool:
    return bool(SCHEME.match(value)) and not re.search(r"\s", value)


def _rfc3339(value: str | None) -> datetime:
    assert value is not None and RFC3339.match(value), value
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert parsed.tzinfo is not None
    return parsed


def jing_errors(documents: dict[str, bytes], tmp_path: Path) -> list[str]:
    """Validate documents (label -> bytes) in one jing run; its errors, labelled."""
    jing = need_tool("jing")
    names = {}
    for n, (label, body) in enumerate(documents.items()):
        target = tmp_path / f"{n:02d}.atom.xml"
        target.write_bytes(body)
        names[str(target)] = label
    result = subprocess.run(
        [jing, "-c", str(ATOM_RNC), *names], capture_output=True, text=True, timeout=120
    )
    errors = [
        line.replace(file, label)
        for line in result.stdout.splitlines()
        for file, label in names.items()
        if line.startswith(file + ":")
    ]
    if result.returncode != 0 and not errors:  # jing itself failed (bad schema, no JVM)
        errors = [f"jing exited {result.returncode}: {result.stdout}{result.stderr}"]
    return errors


def test_atom_is_valid_against_the_rfc4287_relax_ng_schema(site: Site, tmp_path: Path) -> None:
    errors = jing_errors({feed.path: feed.body for feed in site.of("atom")}, tmp_path)
    assert not errors, "\n".join(errors)


def test_atom_rules_the_schema_cannot_express(site: Site) -> None:
    for feed in site.of("atom"):
        check_atom_rules(feed, feed.body)


def check_atom_rules(feed: Feed, body: bytes) -> None:
    """RFC 4287 rules beyond the RELAX NG schema (its Schematron notes and prose)."""
    root = etree.fromstring(body, STRICT)
    assert root.tag == f"{ATOM}feed"
    feed_has_author = root.find(f"{ATOM}author/{ATOM}name") is not None
    selves = root.findall(f"{ATOM}link[@rel='self']")
    assert len(selves) == 1 and urlsplit(selves[0].get("href")).path == feed.path
    assert selves[0].get("href").startswith(BASE + "/")
    assert _absolute_iri(root.findtext(f"{ATOM}id") or ""), feed.path
    _rfc3339(root.findtext(f"{ATOM}updated"))
    if feed.language != "all":
        assert root.get(XML_LANG) == feed.language

    ids: list[str] = []
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) == expected_count(feed)
    for entry in entries:
        where = (feed.path, entry.findtext(f"{ATOM}title"))
        # RFC 4287 §4.1.1 / §4.1.2: an author, here or at the feed level.
        assert feed_has_author or entry.find(f"{ATOM}author/{ATOM}name") is not None, where
        alternates = [
            link
            for link in entry.findall(f"{ATOM}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert alternates or entry.find(f"{ATOM}content") is not None, where
        # At most one alternate per (type, hreflang) (§4.1.1).
        pairs = [(link.get("type"), link.get("hreflang")) for link in alternates]
        assert len(pairs) == len(set(pairs)), where
        for link in entry.findall(f"{ATOM}link"):
            assert urlsplit(link.get("href")).scheme in {"http", "https"}, where
        entry_id = entry.findtext(f"{ATOM}id") or ""
        assert _absolute_iri(entry_id), where
        ids.append(entry_id)
        published = _rfc3339(entry.findtext(f"{ATOM}published"))
        updated = _rfc3339(entry.findtext(f"{ATOM}updated"))
        assert updated >= published, where
        assert entry.get(XML_LANG), where
        assert (entry.findtext(f"{ATOM}title") or "").strip(), where
    assert len(ids) == len(set(ids)), feed.path


# --------------------------------------------------------------------------- JSON Feed


def _no_constants(name: str) -> None:
    raise AssertionError(f"{name} in a JSON Feed (not JSON)")


def _absolute_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in {"http", "https"} and bool(parts.netloc) and " " not in value


def test_json_feed_is_valid_json_feed_1_1(site: Site) -> None:
    for feed in site.of("json"):
        check_json_feed(feed, feed.body)


def check_json_feed(feed: Feed, body: bytes) -> None:
    """The JSON Feed 1.1 schema, then what a schema cannot say."""
    validator = jsonschema.Draft202012Validator(json.loads(JSON_SCHEMA.read_text("utf-8")))
    doc = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)
    ]
    assert not problems, (feed.path, problems)

    assert urlsplit(doc["feed_url"]).path == feed.path
    for key in ("feed_url", "home_page_url"):
        assert _absolute_url(doc[key]), (feed.path, key)
    if feed.language != "all":
        assert doc["language"] == feed.language
    ids = [item["id"] for item in doc["items"]]
    assert len(ids) == len(set(ids)), feed.path
    for item in doc["items"]:
        where = (feed.path, item["id"])
        assert item.get("content_html") or item.get("content_text"), where
        assert item.get("title"), where
        for key in ("url", "external_url", "image", "banner_image"):
            if key in item:
                assert _absolute_url(item[key]), (*where, key)
        published = _rfc3339(item["date_published"])  # fromisoformat: real dates
        assert _rfc3339(item["date_modified"]) >= published, where
        for author in item.get("authors", []):
            assert author.get("name"), where


# --------------------------------------------------------------------------- RSS 2.0


def _rfc822(value: str | None) -> datetime:
    assert value is not None, "missing RFC 822 date"
    match = RFC822.match(value)
    assert match, value
    parsed = parsedate_to_datetime(value)
    assert parsed.strftime("%a") == match.group("wd"), f"wrong weekday: {value}"
    return parsed


def test_rss_follows_the_rss_2_0_rules(site: Site) -> None:
    for feed in site.of("rss"):
        check_rss(feed, feed.body)


def check_rss(feed: Feed, body: bytes) -> None:
    """RSS 2.0 (rssboard.org) rules, as the W3C validator applies them."""
    atom_self = "{http://www.w3.org/2005/Atom}link"
    root = etree.fromstring(body, STRICT)
    assert root.tag == "rss" and root.get("version") == "2.0"
    channels = root.findall("channel")
    assert len(channels) == 1
    channel = channels[0]
    for required in ("title", "link", "description"):
        assert (channel.findtext(required) or "").strip(), (feed.path, required)
    assert _absolute_url(channel.findtext("link") or ""), feed.path
    selves = [link for link in channel.findall(atom_self) if link.get("rel") == "self"]
    assert len(selves) == 1, feed.path
    assert selves[0].get("href").startswith(BASE + "/")
    assert urlsplit(selves[0].get("href")).path == feed.path
    assert selves[0].get("type") == "application/rss+xml"
    _rfc822(channel.findtext("lastBuildDate"))
    if channel.find("pubDate") is not None:
        _rfc822(channel.findtext("pubDate"))
    if channel.find("ttl") is not None:
        assert (channel.findtext("ttl") or "").isdigit()
    if feed.language != "all":
        assert channel.findtext("language") == feed.language

    guids: list[str] = []
    items = channel.findall("item")
    assert len(items) == expected_count(feed)
    for item in items:
        where = (feed.path, item.findtext("title"))
        assert (item.findtext("title") or item.findtext("description") or "").strip(), where
        assert _absolute_url(item.findtext("link") or ""), where
        _rfc822(item.findtext("pubDate"))
        guid = item.find("guid")
        assert guid is not None and (guid.text or "").strip(), where
        guids.append(guid.text or "")
        if guid.get("isPermaLink", "true") == "true":
            assert _absolute_url(guid.text or ""), where
        for enclosure in item.findall("enclosure"):
            assert _absolute_url(enclosure.get("url") or ""), where
            assert (enclosure.get("length") or "").isdigit(), where
            assert "/" in (enclosure.get("type") or ""), where
        for media in item.findall("{http://search.yahoo.com/mrss/}content"):
            assert _absolute_url(media.get("url") or ""), where
        assert len(item.findall("enclosure")) <= 1, where
    assert len(guids) == len(set(guids)), feed.path


# --------------------------------------------------------------------------- the checks


def _mutate(body: bytes, pattern: str, replacement: str, count: int = 1) -> bytes:
    """``body`` with ``pattern`` replaced (``count`` times; 0: everywhere)."""
    text = body.decode("utf-8")
    changed = re.sub(pattern, replacement, text, count=count)
    assert changed != text, f"mutation {pattern!r} did not apply"
    return changed.encode("utf-8")


# What jing must refuse. (A date without a zone is a valid xsd:dateTime, so
# RFC 3339's zone is one of the rules checked in Python: see RULE_BREAKS.)
ATOM_BREAKS = {
    "entry without id": (r"<id>tag:[^<]*:0[^<]*</id>", ""),
    "not a date": (r"<published>[^<]*</published>", "<published>yesterday</published>"),
    "unknown atom element": (r"<generator>", "<generatr>x</generatr><generator>"),
}
RULE_BREAKS = {
    "date without a zone": (r"(<published>[^<]*)\+09:00</published>", r"\1</published>"),
    "no author anywhere": (r"<author>\s*<name>[^<]*</name>\s*</author>", "", 0),
    "duplicate id": (
        r"<entry([^>]*)>(\s*)(<id>[^<]*</id>)((?:.|\n)*?<entry[^>]*>\s*)<id>[^<]*</id>",
        r"<entry\1>\2\3\4\3",
    ),
    "relative id": (r"<id>tag:[^<]*:0", "<id>items/0"),
    "self link elsewhere": (r'href="https://news.example.com/feeds/all/all.atom"', 'href="/x"'),
    "updated before published": (r"<published>\d{4}", "<published>2999"),
}
RSS_BREAKS = {
    "wrong weekday": (r"<pubDate>(Mon|Tue|Wed|Thu|Fri|Sat|Sun)", "<pubDate>Xyz"),
    "weekday off by one": (r"<pubDate>Mon,", "<pubDate>Tue,"),
    "ISO date": (r"<pubDate>[^<]*</pubDate>", "<pubDate>2024-12-09T03:05:00+09:00</pubDate>"),
    "relative link": (r"<link>https://news.example.com/items/", "<link>/items/"),
    "duplicate guid": (r"(<guid[^>]*>)[^<]*(</guid>)", r"\1same\2", 2),
    "no channel description": (r"<description>News feeds[^<]*</description>", ""),
    "self link elsewhere": (r'atom:link href="[^"]*"', 'atom:link href="https://x.test/all.rss"'),
    "enclosure without length": (
        r"</item>",
        '<enclosure url="https://x.test/a.mp3" type="audio/mpeg"/></item>',
    ),
}
JSON_BREAKS = {
    "NaN": (r'"title":"[^"]*"', '"title":NaN'),
    "February 30": (r'"date_published":"\d{4}-\d{2}-\d{2}', '"date_published":"2024-02-30'),
    "date without a zone": (r'("date_published":"[^"]*)\+09:00"', r'\1"'),
    "relative url": (r'"url":"https://news.example.com/items/', '"url":"/items/'),
    "no content": (r'"content_html":"(?:[^"\\]|\\.)*",("content_text":"(?:[^"\\]|\\.)*",)?', ""),
    "duplicate id": (r'"id":"[^"]*"', '"id":"same"', 2),
    "unknown key": (r'"items":', '"itmes":[],"items":'),
}


def _break_each(feed: Feed, breaks: dict[str, tuple[Any, ...]]) -> dict[str, bytes]:
    return {name: _mutate(feed.body, *how) for name, how in breaks.items()}


def test_the_checks_catch_broken_feeds(site: Site, tmp_path: Path) -> None:
    """Each validator above refuses a feed broken on purpose: no green by accident."""
    (atom,) = (f for f in site.of("atom") if (f.language, f.category) == ("all", "all"))
    (rss,) = (f for f in site.of("rss") if (f.language, f.category) == ("all", "all"))
    (jsonfeed,) = (f for f in site.of("json") if (f.language, f.category) == ("all", "all"))
    caught = []
    for check, feed, breaks in (
        (check_atom_rules, atom, RULE_BREAKS),
        (check_rss, rss, RSS_BREAKS),
        (check_json_feed, jsonfeed, JSON_BREAKS),
    ):
        for name, body in _break_each(feed, breaks).items():
            with pytest.raises((AssertionError, ValueError)):
                check(feed, body)
            caught.append(name)
    assert len(caught) == len(RULE_BREAKS) + len(RSS_BREAKS) + len(JSON_BREAKS)

    broken = _break_each(atom, ATOM_BREAKS)
    errors = jing_errors(broken, tmp_path)
    for name in broken:
        assert any(error.startswith(name + ":") for error in errors), (name, errors)


# --------------------------------------------------------------------------- readers


def _expected(site: Site, feed: Feed) -> dict[str, tuple[str, str]]:
    """id -> (title, url) of a feed's items, from its JSON twin."""
    return {
        item["id"]: (item["title"], item["url"])
        for item in site.json_items(feed.language, feed.category)
    }


def test_feedparser_reads_every_feed_the_same(site: Site) -> None:
    for feed in site.feeds:
        parsed = feedparser.parse(feed.body, response_headers={"content-type": feed.content_type})
        expected = _expected(site, feed)
        if feed.fmt == "json":  # feedparser 6 has no JSON Feed support
            continue
        assert not parsed.bozo, (feed.path, parsed.bozo_exception)
        assert parsed.feed.get("title"), feed.path
        got = {}
        for entry in parsed.entries:
            assert entry.get("id") and entry.get("title") and entry.get("link"), feed.path
            assert entry.get("published_parsed"), (feed.path, entry.id)
            got[entry.id] = (entry.title, entry.link)
        assert got == expected, feed.path


def test_the_reader_library_subscribes_to_every_format(site: Site, tmp_path: Path) -> None:
    from reader import ParseError, make_reader

    reader = make_reader(str(tmp_path / "reader.sqlite"))
    try:
        urls = {site.url + feed.path: feed for feed in site.feeds}
        for url in urls:
            reader.add_feed(url)

        def update(label: str) -> dict[str, Any]:
            results = dict(reader.update_feeds_iter(scheduled=False))
            assert set(results) == set(urls), label
            failed = {u: r for u, r in results.items() if isinstance(r, Exception)}
            assert not failed, (label, failed)
            return results

        def check(label: str) -> None:
            for url, feed in urls.items():
                expected = _expected(site, feed)
                entries = list(reader.get_entries(feed=url))
                ids = [entry.id for entry in entries]
                assert len(ids) == len(set(ids)), (label, feed.path)
                titles = Counter(entry.title for entry in entries)
                assert titles == Counter(t for t, _ in expected.values()), (label, feed.path)
                got = {entry.id: (entry.title, entry.link) for entry in entries}
                assert got == expected, (label, feed.path)
                assert reader.get_feed(url).last_exception is None, (label, feed.path)

        first = update("first update")
        assert sum(r.new for r in first.values() if r) == sum(expected_count(f) for f in site.feeds)
        check("first update")
        second = update("second update")
        assert all(r is None or r.new == 0 for r in second.values()), second
        check("second update")

        # Forced: as if the cache were stale, every feed is fetched and parsed again.
        storage = reader._storage
        for url in urls:
            storage.set_feed_stale(url, True)
        forced = update("forced update")
        assert all(r is not None and r.new == 0 for r in forced.values()), forced
        check("forced update")
    except ParseError as exc:  # pragma: no cover - a clearer message
        raise AssertionError(f"reader could not parse {exc.url}: {exc}") from exc
    finally:
        reader.close()


# --------------------------------------------------------------------------- newsboat

# newsboat keys its cache by guid alone (RSS 2.0 and RFC 4287 both say an id
# is globally unique), so an item in two subscribed feeds is stored once. Each
# feed is therefore read into its own cache to compare it item for item; the
# OPML test then subscribes to everything at once, as a user would.


def _newsboat(newsboat: str, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
    }
    return subprocess.run(
        [newsboat, *args],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def _newsboat_reload(newsboat: str, home: Path, urls: Path) -> dict[str, list[tuple[str, ...]]]:
    """``newsboat -x reload`` twice; no error anywhere; feedurl -> [(guid, title, url)]."""
    config = home / "config"
    error_log = home / "error.log"
    config.write_text(
        f'error-log "{error_log}"\n'
        "reload-threads 2\n"
        "download-timeout 30\n"
        "download-retries 1\n"
        "max-items 0\n",
        encoding="utf-8",
    )
    cache = home / "cache.db"
    for run in (1, 2):
        log = home / f"debug-{run}.log"
        result = _newsboat(
            newsboat,
            home,
            *("-x", "reload", "-u", str(urls), "-c", str(cache), "-C", str(config)),
            *("-d", str(log), "-l", "3"),
        )
        where = (urls.read_text("utf-8"), run)
        assert result.returncode == 0, (*where, result.stdout, result.stderr)
        errors = error_log.read_text("utf-8") if error_log.exists() else ""
        assert not errors.strip(), (*where, errors)
        logged = log.read_text("utf-8", errors="replace") if log.exists() else ""
        bad = [line for line in logged.splitlines() if re.search(r"\bERROR\b", line)]
        assert not bad, (*where, bad[:10])
    with sqlite3.connect(cache) as db:
        rows = db.execute("SELECT feedurl, guid, title, url FROM rss_item").fetchall()
        feeds = [row[0] for row in db.execute("SELECT rssurl FROM rss_feed")]
    items: dict[str, list[tuple[str, ...]]] = {url: [] for url in feeds}
    for feedurl, *rest in rows:
        items.setdefault(feedurl, []).append(tuple(rest))
    return items


def test_newsboat_reads_every_feed(site: Site, tmp_path: Path) -> None:
    newsboat = need_tool("newsboat")
    feeds = [feed for feed in site.feeds if feed.fmt != "json"]  # newsboat has no JSON Feed

    def read(n: int, feed: Feed) -> tuple[Feed, dict[str, list[tuple[str, ...]]]]:
        home = tmp_path / f"{n:02d}"
        home.mkdir()
        urls = home / "urls"
        urls.write_text(site.url + feed.path + "\n", encoding="utf-8")
        return feed, _newsboat_reload(newsboat, home, urls)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, range(len(feeds)), feeds))
    for feed, items in results:
        url = site.url + feed.path
        assert list(items) == [url], feed.path
        got = items[url]
        expected = _expected(site, feed)
        assert sorted(guid for guid, _, _ in got) == sorted(expected), feed.path
        assert {guid: (title, link) for guid, title, link in got} == expected, feed.path


def test_newsboat_imports_the_opml_and_reloads(site: Site, tmp_path: Path) -> None:
    newsboat = need_tool("newsboat")
    home = tmp_path / "newsboat"
    # The OPML names the public site; point it at the test server.
    opml = tmp_path / "feeds.opml"
    opml.write_text(site.opml.replace(f'"{BASE}/', f'"{site.url}/'), encoding="utf-8")
    urls = home / "urls"
    result = _newsboat(newsboat, home, "-i", str(opml), "-u", str(urls))
    assert result.returncode == 0, (result.stdout, result.stderr)
    imported = [
        line.split()[0] for line in urls.read_text("utf-8").splitlines() if line.startswith("http")
    ]
    expected = sorted(site.url + f.path for f in site.feeds if f.fmt != "json")
    assert sorted(imported) == expected

    items = _newsboat_reload(newsboat, home, urls)
    assert sorted(items) == expected  # every feed known to newsboat after the reloads
    # Subscribed to everything, a user sees every item exactly once.
    everything = {
        item["id"]: (item["title"], item["url"]) for item in site.json_items("all", "all")
    }
    got = [row for rows in items.values() for row in rows]
    assert sorted(guid for guid, _, _ in got) == sorted(everything)
    assert {guid: (title, link) for guid, title, link in got} == everything


# --------------------------------------------------------------------------- browser


LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[Any]:
    chromium = need_tool("chromium", CHROMIUM)
    need_module("playwright")
    from playwright.sync_api import Route, sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=chromium,
            headless=True,
            args=LAUNCH_ARGS,
            locale="ko-KR",
            viewport={"width": 1280, "height": 900},
        )

        def route(route: Route) -> None:
            # Nothing leaves the machine: the public site is the test server,
            # anything else (sample images on other hosts) is refused.
            url = route.request.url
            requested.append(url)
            if url.startswith(BASE + "/"):
                route.fulfill(response=context.request.fetch(site.local(url)))
            elif url.startswith(site.url + "/") or url.startswith("data:"):
                route.continue_()
            else:
                route.abort()

        requested: list[str] = []
        context.route("**/*", route)
        context.requested = requested  # every URL the pages asked for
        try:
            yield context
        finally:
            context.close()


def test_the_browser_finds_every_feed_on_the_index(site: Site, browser_context: Any) -> None:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    response = page.goto(site.url + "/", wait_until="load")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")

    alternates = page.eval_on_selector_all(
        'head link[rel="alternate"]',
        "links => links.map(l => ({type: l.type, href: l.href, title: l.title}))",
    )
    assert len(alternates) == len(EXPECTED_GRID) * 3
    found = set()
    for link in alternates:
        assert link["title"].strip(), link
        assert link["href"].startswith(BASE + "/feeds/"), link
        language, category, fmt = _parse_feed_path(urlsplit(link["href"]).path)
        assert link["type"] == FEED_TYPES[fmt].split(";")[0], link
        found.add((language, category, fmt))
    assert found == {(lang, cat, fmt) for lang, cat in EXPECTED_GRID for fmt in FEED_TYPES}

    # Every subscribe link in the table answers 200 with the feed's content type.
    subscribe = page.eval_on_selector_all(
        "td.fmt a", "links => links.map(l => ({href: l.href, type: l.type}))"
    )
    assert len(subscribe) == len(EXPECTED_GRID) * 3
    for link in subscribe:
        # The public origin mapped onto the test server (API requests skip routes).
        answer = browser_context.request.get(site.local(link["href"]))
        assert answer.status == 200, link
        assert answer.headers["content-type"] == f"{link['type']}; charset=utf-8", link
    # The Korean category is shown as Hangul, not percent-encoded.
    assert "정치" in page.inner_text("table")
    assert "経済" in page.inner_text("table")

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "index.png"), full_page=True)
    assert not errors, errors
    page.close()


@pytest.mark.parametrize(
    ("item_id", "language", "heading"),
    [
        ("politics/budget-2025", "ko", "국회, 2025년도 예산안 본회의 통과"),
        ("politics/지방선거-D100", "ko", "지방선거 D-100"),
        ("ja/economy-yen", "ja", "円相場、一時1ドル＝150円台に"),
        # The two samples, one of each content format.
        ("000_a08af95bc486be6a", "ko", "북한 전원회의로 북러 조약 후속조치 논의"),
        ("002_ad53fbf95e7bb634", "en", "N. KOREA RATIFIES TREATY WITH RUSSIA"),
    ],
)
def test_the_browser_renders_an_item_page(
    site: Site, browser_context: Any, item_id: str, language: str, heading: str
) -> None:
    # Ids are tag: IRIs, percent-encoded where they are not ASCII.
    item = next(
        i for i in site.json_items("all", "all") if i["id"].endswith(":" + quote(item_id, safe="/"))
    )
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    # The item's own url, as a reader would open it (routed to the test server).
    assert item["url"] == BASE + "/items/" + quote(item_id, safe="/")
    response = page.goto(item["url"], wait_until="load")
    assert response is not None and response.status == 200
    assert heading in page.inner_text("h1")
    assert page.locator("h1").count() == 1
    # Links to the feeds it is in, each of which answers.
    feeds = page.eval_on_selector_all(".feeds-of-item a", "links => links.map(l => l.href)")
    assert f"{BASE}/feeds/{language}/all.rss" in feeds
    for href in feeds:
        assert browser_context.request.get(site.local(href)).status == 200, href
    # Images load from absolute URLs (relative ones were resolved against the item).
    for src in page.eval_on_selector_all("article img", "imgs => imgs.map(i => i.src)"):
        assert src.startswith(("https://", "http://")), src
        assert src in browser_context.requested, src
    assert page.get_attribute("html", "lang") == language
    assert page.title().startswith(item["title"])
    body = page.inner_text("article")
    assert item["summary"][:20] in body.replace("\n", " ") or item["content_text"][:20] in body
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9]+", "-", item_id.encode("ascii", "ignore").decode()).strip("-")
    page.screenshot(path=str(SCREENSHOTS / f"item-{name or 'ko'}.png"), full_page=True)
    assert not errors, errors
    page.close()


def test_the_fixture_covers_what_it_promises() -> None:
    """Guard the fixture itself: both sample formats, a draft and a Hangul file name."""
    names = {p.relative_to(READERS).as_posix() for p in READERS.rglob("*") if p.is_file()}
    assert {"000_a08af95bc486be6a.txt", "002_ad53fbf95e7bb634.txt"} <= names
    assert "drafts/unreleased.md" in names
    assert any(re.search(r"[가-힣]", name) for name in names)


# --------------------------------------------------------------------------- feeds as pages


FEED_PAGES = {
    # path: (screenshot, text of the h1, an entry's title)
    "/feeds/ko/" + quote("정치") + ".rss": ("feed-category-rss.png", "정치 (ko)", "지방선거 D-100"),
    "/feeds/all/world.atom": ("feed-category-atom.png", "World", "Markets & more"),
    "/feeds/ko/tag/" + quote("국회") + ".atom": (
        "feed-tag.png",
        "tag 국회 (ko)",
        "2025년도 예산안",
    ),
}


@pytest.mark.parametrize("path", list(FEED_PAGES))
def test_the_browser_shows_a_feed_as_a_readable_page(
    site: Site, browser_context: Any, path: str
) -> None:
    """A person clicking a subscribe link sees a page, not markup (the XSLT ran)."""
    shot, title, entry = FEED_PAGES[path]
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    response = page.goto(site.url + path, wait_until="load")
    assert response is not None and response.status == 200
    # Chromium renders XML types only: the same feed bytes, labelled application/xml.
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    accept = response.request.headers["accept"]
    assert accept.startswith("text/html")
    as_browser = requests.get(site.url + path, headers={"Accept": accept}, timeout=30)
    assert as_browser.content == next(f.body for f in site.feeds if f.path == path)
    assert title in page.inner_text("h1")
    assert page.inner_text("section.subscribe code") == BASE + path
    assert entry in page.inner_text("div.entries")
    assert "<item>" not in page.content() and "<entry" not in page.content()
    links = page.eval_on_selector_all("div.entries h3 a", "links => links.map(l => l.href)")
    assert links and all(link.startswith(BASE + "/items/") for link in links)
    # Chromium 156 shows a banner over pages made by XSLT (it is deprecating
    # XSLT); hide it so the screenshot shows the page itself.
    page.evaluate("() => document.querySelector('xslt-warning-banner')?.remove()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / shot), full_page=True)
    assert not errors, errors
    page.close()


# --------------------------------------------------------------------------- validators for pages

JS = Path(__file__).resolve().parent / "js" / "node_modules"
VNU = JS / "vnu-jar" / "build" / "dist" / "vnu.jar"
AXE = JS / "axe-core" / "axe.min.js"


def need_file(path: Path) -> Path:
    """A checker installed from npm (tests/js/package.json); skip locally, fail on CI."""
    if path.is_file():
        return path
    reason = f"{path.name} is not installed (npm ci --prefix tests/js; bash .ci/run does it)"
    if os.environ.get("CI"):
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def test_every_page_passes_the_html_validator_and_axe(
    site: Site, browser_context: Any, tmp_path: Path
) -> None:
    """The Nu HTML Checker (vnu.jar) and axe-core in Chromium, on what people see:
    the index, the tag page, every item page and feeds turned into pages by the XSLT."""
    java = need_tool("java")
    vnu, axe = need_file(VNU), need_file(AXE).read_text("utf-8")
    items = [item["url"].removeprefix(BASE) for item in site.json_items("all", "all")]
    feeds = [f.path for f in site.feeds if f.fmt != "json" and f.language in {"all", "ko"}]
    paths = ["/", "/tags", *items, *feeds]
    page = browser_context.new_page()
    documents: dict[str, str] = {}
    violations: list[str] = []
    for path in paths:
        response = page.goto(site.url + path, wait_until="load")
        assert response is not None and response.status == 200, path
        # Chromium's own XSLT deprecation banner is browser UI, not our page.
        page.evaluate("() => document.querySelector('xslt-warning-banner')?.remove()")
        target = tmp_path / f"{len(documents):03d}.html"
        target.write_text(page.content(), encoding="utf-8")
        documents[str(target)] = path
        # Evaluated over the DevTools protocol: the pages' CSP (no script) stays on.
        page.evaluate(axe)
        result = page.evaluate(
            "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        )
        violations += [
            f"{path}: {v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']]}"
            for v in result
            if v["impact"] in {"serious", "critical"}
        ]
    page.close()
    assert not violations, "\n".join(violations)
    assert any("/tag/" in p for p in documents.values())  # a tag feed as a page is checked

    checked = subprocess.run(
        [java, "-jar", str(vnu), "--errors-only", "--format", "gnu", *documents],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [
        line.replace(file, label)
        for line in (checked.stdout + checked.stderr).splitlines()
        for file, label in documents.items()
        if file in line
    ]
    assert checked.returncode == 0 and not errors, "\n".join(errors) or checked.stderr


def test_the_html_checks_catch_broken_pages(browser_context: Any, tmp_path: Path) -> None:
    """The validator and axe refuse what the pages must not have: no green by accident."""
    java = need_tool("java")
    vnu, axe = need_file(VNU), need_file(AXE).read_text("utf-8")
    page = browser_context.new_page()
    page.set_content('<html><body><img src="data:,"><a href="/x"></a></body></html>')
    page.evaluate(axe)
    found = page.evaluate("async () => (await axe.run(document)).violations.map(v => v.id)")
    page.close()
    assert {"image-alt", "html-has-lang", "link-name"} <= set(found), found
    broken = tmp_path / "broken.html"
    broken.write_text(
        "<!doctype html><html lang=en><head><title>x</title></head>"
        "<body><p><div>block in p</div></p><time>yesterday</time></body></html>",
        encoding="utf-8",
    )
    checked = subprocess.run(
        [java, "-jar", str(vnu), "--errors-only", "--format", "gnu", str(broken)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert checked.returncode != 0 and "time" in checked.stderr + checked.stdout


def test_firefox_shows_a_feed_as_a_readable_page(site: Site, tmp_path: Path) -> None:
    """Firefox ESR (Debian's), driven over WebDriver BiDi: the XSLT runs there too."""
    firefox = need_tool("firefox-esr")
    need_module("websockets")
    from firefox_bidi import Firefox

    path = "/feeds/ko/tag/" + quote("국회") + ".rss"
    profile = tmp_path / "firefox-profile"
    profile.mkdir()
    browser = Firefox(firefox, profile)
    try:
        browser.open(site.url + path)
        assert browser.evaluate("document.contentType") == "text/html"  # the XSLT's output
        assert "tag 국회 (ko)" in browser.evaluate("document.querySelector('h1').textContent")
        code = browser.evaluate("document.querySelector('section.subscribe code').textContent")
        assert code == BASE + path
        titles = browser.evaluate(
            "[...document.querySelectorAll('div.entries h3 a')].map(a => a.textContent).join('\\n')"
        )
        assert titles.split("\n") == ["국회, 2025년도 예산안 본회의 통과"]
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.screenshot(SCREENSHOTS / "firefox-feed-tag.png")
    finally:
        browser.close()
