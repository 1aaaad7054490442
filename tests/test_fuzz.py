"""Fuzzing (issue #6): whatever content comes in, every feed stays valid; whatever
request comes in, never a 500.

Example counts are modest so the suite stays fast on CI; raise them locally
with ``HYPOTHESIS_PROFILE``-style edits when hunting.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.feed_cache import FeedCache
from feedsvc.render import FORMATS
from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

NOW = datetime(2026, 1, 1, tzinfo=UTC)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

KEYS = [
    "title", "id", "guid", "date", "updated", "lang", "language", "categories", "category",
    "tags", "author", "authors", "summary", "excerpt", "image", "url", "draft", "published",
]  # fmt: skip
scalar = st.one_of(
    st.text(max_size=40),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(["2024-13-45", "2024-02-30 25:61", "1999-12-31", "no", "0123", "~", "@x"]),
)
yaml_value = st.recursive(
    scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner)
)


def _yaml_text(meta: dict[str, object]) -> str:
    lines = []
    for key, value in meta.items():
        lines.append(f"{key}: {json.dumps(value, ensure_ascii=False, default=str)}")
    return "\n".join(lines)


front_matter = st.builds(
    lambda meta, raw, body, crlf: (
        "---\n" + _yaml_text(meta) + "\n" + raw + "\n---\n" + body
    ).replace("\n", "\r\n" if crlf else "\n"),
    st.dictionaries(st.sampled_from(KEYS), yaml_value, max_size=6),
    st.text(max_size=60),
    st.text(max_size=300),
    st.booleans(),
)
transcript = st.builds(
    lambda day, cat, title, paras, marker: (
        f"date 2024-11-{day:02d} [{cat}] {title}\n"
        f"입력 2024-11-{day:02d} 15:42:35 수정 2024-11-{day:02d} 15:43:40 뉴스\n\n"
        + "\n\n\n".join(f"[{marker}]\n{p}" for p in paras)
    ),
    st.integers(1, 30),
    st.text(max_size=20),
    st.text(max_size=60),
    st.lists(st.text(max_size=200), max_size=4),
    st.sampled_from(["LEAD", "REPORT", "ANCHOR", "X", ""]),
)
html_like = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<script>alert(1)</script>",
            "<a href='javascript:x'>",
            "<img src=x onerror=y>",
            "&#x0b;",
            "&#xFFFE;",
            "\x00",
            "\ud800",
            "<![CDATA[",
            "]]>",
            "<div>" * 50,
            "# h\n",
            "\x1b",
            "&amp;",
            "&bogus;",
            "<",
            ">",
            "\u2028",
            "💥",
            "\ufeff",
        ]
    )
    | st.text(max_size=20),
    max_size=40,
).map("".join)
content_text = st.one_of(front_matter, transcript, html_like, st.text(max_size=400))
content_file = st.one_of(
    st.binary(max_size=600),
    content_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
    content_text.map(lambda t: t.encode("cp949", "replace")),
    content_text.map(lambda t: b"\xef\xbb\xbf" + t.encode("utf-8", "replace")),
)


@pytest.fixture
def site(tmp_path: Path, make_settings):
    root = tmp_path / "content"
    root.mkdir()
    settings_ = make_settings(root, server_refresh_token="fuzz-token")
    store = open_store(settings_.store.url)
    yield root, settings_, store
    store.close()


def assert_feeds_valid(settings_, store) -> int:
    cache = FeedCache(settings_, store)
    checked = 0
    for info in cache.grid():
        for fmt in FORMATS:
            feed = cache.get(info.key, fmt.name)
            assert feed is not None
            if fmt.name == "json":
                # Strict JSON: no NaN/Infinity, no lone surrogates.
                doc = json.loads(feed.body.decode("utf-8"), parse_constant=lambda c: pytest.fail(c))
                assert doc["version"].startswith("https://jsonfeed.org/version/1")
                for item in doc["items"]:
                    assert item["id"] and isinstance(item["id"], str)
            else:
                etree.fromstring(feed.body, etree.XMLParser(recover=False, resolve_entities=False))
            checked += 1
    return checked


@FUZZ
@given(files=st.lists(content_file, min_size=1, max_size=4))
def test_any_content_keeps_every_feed_valid(site, files: list[bytes]) -> None:
    root, settings_, store = site
    for old in root.iterdir():
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink()
    (root / "anchor.md").write_text("# Anchor\n\nalways here\n", encoding="utf-8")
    for n, data in enumerate(files):
        folder = root / ("sub" if n % 2 else "")
        folder.mkdir(exist_ok=True)
        (folder / f"f{n}.txt").write_bytes(data)
    Scanner(settings_, store, lambda: NOW).run()
    assert assert_feeds_valid(settings_, store) >= 3
    client = create_app(settings_, store=store, clock=lambda: NOW).test_client()
    assert client.get("/").status_code == 200
    assert client.get("/feeds.opml").status_code == 200
    for info in FeedCache(settings_, store).grid():
        if info.key.language == "all" and info.key.category == "all":
            for item in store.items_for(info.key, 100):
                page = client.get("/items/" + quote(item.id, safe="/"))
                assert page.status_code == 200, item.id


path_chars = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from("/%.\\\x00\r\n"),
    max_size=30,
)


@settings(max_examples=300, deadline=None, database=None)
@given(
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE", "XYZ"]),
    prefix=st.sampled_from(["/", "/feeds/", "/feeds/all/", "/items/", "/api/", "/feeds.opml"]),
    tail=path_chars,
    encode=st.booleans(),
    query=st.text(max_size=30),
    headers=st.dictionaries(
        st.sampled_from(
            [
                "If-None-Match",
                "If-Modified-Since",
                "Accept-Encoding",
                "Range",
                "Host",
                "Authorization",
                "X-Forwarded-Host",
                "Forwarded",
                "Content-Type",
                "Cookie",
                "Accept",
                "X-Anything",
            ]
        ),
        st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60),
        max_size=5,
    ),
)
def test_random_requests_never_500(  # noqa: PLR0913 - one parameter per strategy Hypothesis draws
    fuzz_client, *, method: str, prefix: str, tail: str, encode: bool, query: str, headers
) -> None:
    path = prefix + (quote(tail, safe="/") if encode else tail)
    path = path + "?" + quote(query, safe="=&") if "?" not in path else path
    if path.startswith("//"):
        # The test client would read "//x" as a host name, not as a path with an
        # empty first segment: hand the app the path as a server would (PEP 3333).
        target, _, query_string = path.partition("?")
        wsgi_path = unquote(target).encode("utf-8", "surrogateescape").decode("latin-1")
        overrides = {"PATH_INFO": wsgi_path, "QUERY_STRING": query_string}
        response = fuzz_client.open(
            "/", method=method, headers=headers, environ_overrides=overrides
        )
    else:
        response = fuzz_client.open(path, method=method, headers=headers)
    assert response.status_code < 500, (method, path, headers, response.data[:200])
    if response.status_code >= 400:
        assert b"<html" not in response.data.lower()
        assert b"Traceback" not in response.data


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory):
    from conftest import SAMPLE_FRONTMATTER, SAMPLE_TRANSCRIPT, feedsvc_env

    from feedsvc.settings import load_settings

    tmp = tmp_path_factory.mktemp("fuzzweb")
    root = tmp / "content"
    root.mkdir()
    for sample in (SAMPLE_FRONTMATTER, SAMPLE_TRANSCRIPT):
        (root / sample.name).write_bytes(sample.read_bytes())
    settings_ = load_settings(None, environ=feedsvc_env(tmp, root, server_refresh_token="t"))
    store = open_store(settings_.store.url)
    Scanner(settings_, store, lambda: NOW).run()
    yield create_app(settings_, store=store, clock=lambda: NOW).test_client()
    store.close()
