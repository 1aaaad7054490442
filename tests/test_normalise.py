"""normalise(): every row of the docs/item-fields.md table, the two samples, sanitiser attacks.

RawDocuments are built by hand (the parse package is developed separately):
the front-matter sample is split here and loaded with YAML's BaseLoader, which
keeps every scalar a ``str`` exactly as the RawDocument contract says.
"""

from __future__ import annotations

import dataclasses
import html
import re
import time
import unicodedata
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.errors import SourceError
from feedsvc.normalise import normalise, normalise_document, site_digest
from feedsvc.normalise.html import MAX_DEPTH, limit_nesting
from feedsvc.normalise.summary import ELLIPSIS, cut, is_boundary
from feedsvc.settings import SiteSettings
from feedsvc.text import collapse_whitespace
from feedsvc.types import Category, Item, RawDocument

SAMPLES = Path(__file__).parent / "data" / "content"
SITE = SiteSettings(base_url="https://news.example.com", id_prefix="tag:news.example.com,2024:")
FIRST_SEEN = datetime(2024, 3, 1, 1, 2, 3, tzinfo=UTC)
CHANGED_AT = datetime(2024, 3, 2, 1, 2, 3, tzinfo=UTC)
KST = timezone(timedelta(hours=9))


def doc(
    meta: Mapping[str, object] | None = None,
    body: str = "<p>Hello world, this is the body.</p>",
    path: str = "a.md",
    **raw: Any,
) -> RawDocument:
    return RawDocument(
        path=path,
        body_html=body,
        meta=meta or {},
        **raw,
    )


def norm(raw: RawDocument, site: SiteSettings = SITE) -> Item:
    return normalise(raw, site, first_seen=FIRST_SEEN, changed_at=CHANGED_AT)


def item(meta: Mapping[str, object] | None = None, **kwargs: Any) -> Item:
    return norm(doc(meta, **kwargs))


# -- the samples (the figures the user gave for them) --------------------------


def frontmatter_sample() -> RawDocument:
    text = (SAMPLES / "000_a08af95bc486be6a.txt").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n(.*)", text, re.S)
    assert match
    meta = yaml.load(match.group(1), Loader=yaml.BaseLoader)  # every scalar a str
    return RawDocument(
        path="000_a08af95bc486be6a.txt",
        body_html=match.group(2),
        meta=meta,
    )


def transcript_sample() -> RawDocument:
    text = (SAMPLES / "002_ad53fbf95e7bb634.txt").read_text(encoding="utf-8")
    lines = text.strip().split("\n")
    rest = re.sub(r"^\[[A-Z]+\]\n+", "", "\n".join(lines[3:]), flags=re.M)  # section markers
    paragraphs = [" ".join(p.split("\n\n")).strip() for p in re.split(r"\n{3,}", rest)]
    return RawDocument(
        path="002_ad53fbf95e7bb634.txt",
        body_html="".join(f"<p>{html.escape(p)}</p>" for p in paragraphs),
        title="N. KOREA RATIFIES TREATY WITH RUSSIA",
        category="News Today",
        summary=paragraphs[0],
        published=datetime(2024, 11, 13, 15, 42, 35),
        updated=datetime(2024, 11, 13, 15, 43, 40),
    )


def test_frontmatter_sample() -> None:
    raw = frontmatter_sample()
    result = norm(raw)
    assert result.language == "ko"
    assert result.categories == (Category("News", "news"),)
    assert result.summary == collapse_whitespace(str(raw.meta["excerpt"]))
    assert result.image == "https://newsdao.kr/res/images/meta/newsdao_breakingnews.jpg"
    assert result.title == "북한 전원회의로 북러 조약 후속조치 논의"
    assert result.id == "000_a08af95bc486be6a"
    assert result.guid == "tag:news.example.com,2024:000_a08af95bc486be6a"
    assert result.url == "https://news.example.com/items/000_a08af95bc486be6a"
    assert "style=" not in result.content_html and "data-ke-size" not in result.content_html
    assert "<h1>김정은, 러시아와 협력 확대 방안 협의 가능성</h1>" in result.content_html
    assert result.published == FIRST_SEEN
    assert result.published.utcoffset() == timedelta(hours=9)
    assert not result.draft


def test_transcript_sample() -> None:
    result = norm(transcript_sample())
    assert result.language == "en"
    assert result.categories == (Category("News Today", "news-today"),)
    assert result.published.isoformat() == "2024-11-13T15:42:35+09:00"
    assert result.updated.isoformat() == "2024-11-13T15:43:40+09:00"
    assert result.title == "N. KOREA RATIFIES TREATY WITH RUSSIA"
    assert result.summary.startswith("Following Russian President")
    assert "signed the treaty into law" in result.content_text


# -- id and guid -----------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "path", "expected"),
    [
        ({"id": "0123"}, "a.md", "0123"),
        ({"guid": "abc"}, "a.md", "abc"),
        ({"id": 42}, "a.md", "42"),  # TOML integer
        ({"id": "  "}, "news/2024/a.md", "news/2024/a"),  # blank: next source
        ({}, "news/2024/a.md", "news/2024/a"),
        ({}, "README", "README"),
        ({"title": "Other"}, "x/y.tar.gz", "x/y.tar"),
    ],
)
def test_id(meta: dict[str, object], path: str, expected: str) -> None:
    assert item(meta, path=path).id == expected


def test_id_ignores_title_base_url_and_times() -> None:
    raw = doc({"title": "One"}, path="n/a.md")
    other_site = dataclasses.replace(SITE, base_url="https://elsewhere.example.org")
    moved = normalise(
        dataclasses.replace(raw, meta={"title": "Two"}),
        other_site,
        first_seen=FIRST_SEEN + timedelta(days=9),
        changed_at=CHANGED_AT + timedelta(days=9),
    )
    assert norm(raw).id == moved.id == "n/a"
    assert norm(raw).guid == moved.guid


def test_id_of_wrong_type_is_an_error() -> None:
    with pytest.raises(SourceError, match="'id'"):
        item({"id": True})


@pytest.mark.parametrize(
    ("item_id", "guid"),
    [
        ("news/a", "tag:news.example.com,2024:news/a"),
        # RFC 3987 §3.1: non-ASCII as percent-encoded UTF-8 (W3C: "not a valid TAG").
        ("정치/a b", "tag:news.example.com,2024:%EC%A0%95%EC%B9%98/a%20b"),
        ("a&b<c>:d", "tag:news.example.com,2024:a%26b%3Cc%3E%3Ad"),
        ("tag:other.example,2020:x", "tag:other.example,2020:x"),
        (
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
            "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
        ),
        ("https://example.com/p/1", "https://example.com/p/1"),
        ("tag:bad id", "tag:news.example.com,2024:tag%3Abad%20id"),  # not a valid IRI
        ("note:1", "tag:news.example.com,2024:note%3A1"),  # not a permanent scheme
    ],
)
def test_guid(item_id: str, guid: str) -> None:
    assert item({"id": item_id}).guid == guid


# -- url -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"url": "https://example.com/story"}, "https://example.com/story"),
        ({"link": "http://example.com/a b"}, "http://example.com/a%20b"),
        ({"permalink": "https://example.com/p"}, "https://example.com/p"),
        ({"url": "/relative"}, "https://news.example.com/items/a"),
        ({"url": "javascript:alert(1)"}, "https://news.example.com/items/a"),
        ({"id": "뉴스/a b"}, "https://news.example.com/items/%EB%89%B4%EC%8A%A4/a%20b"),
        ({"id": "a?b#c"}, "https://news.example.com/items/a%3Fb%23c"),
    ],
)
def test_url(meta: dict[str, object], expected: str) -> None:
    assert item(meta).url == expected


# -- title -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "raw", "body", "path", "expected"),
    [
        ({"title": "Meta  title"}, {"title": "Raw"}, "<h1>H</h1>", "a.md", "Meta title"),
        ({"title": ["a", "b"]}, {}, "", "a.md", "a, b"),
        ({"title": 2024}, {}, "", "a.md", "2024"),
        ({"title": "   "}, {"title": "Raw title"}, "<h1>H</h1>", "a.md", "Raw title"),
        ({}, {}, "<p>intro</p><h3>Third <b>level</b></h3>", "a.md", "Third level"),
        ({}, {}, "<p>First line<br>second line</p>", "a.md", "First line"),
        ({}, {}, "", "news/my-story.md", "my-story"),
        ({}, {}, "<p> </p>", "news/my-story.md", "my-story"),
        ({"title": "Tom &amp; Jerry &#8211; <b>Bold</b>"}, {}, "", "a.md", "Tom & Jerry – Bold"),
        ({"title": "x < y and a<b"}, {}, "", "a.md", "x < y and a<b"),
        ({"title": "bad\x0bchar\ufffe"}, {}, "", "a.md", "badchar"),
    ],
)
def test_title(
    meta: dict[str, object], raw: dict[str, Any], body: str, path: str, expected: str
) -> None:
    assert item(meta, body=body, path=path, **raw).title == expected


@pytest.mark.parametrize(
    ("meta", "key"),
    [({"title": {"a": "b"}}, "title"), ({"lang": False}, "lang"), ({"tags": [["x"]]}, "tags")],
)
def test_value_of_the_wrong_shape_is_an_error(meta: dict[str, object], key: str) -> None:
    with pytest.raises(SourceError, match=f"front matter '{key}'"):
        item(meta)


def test_title_from_a_long_first_line_is_cut() -> None:
    title = item(body="<p>" + "word " * 200 + "</p>").title
    assert len(title) <= 201 and title.endswith(ELLIPSIS)


# -- summary ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["excerpt", "summary", "description"])
def test_summary_from_front_matter(key: str) -> None:
    assert item({key: " The <em>lead</em> &amp;\n more "}).summary == "The lead & more"


def test_summary_precedence() -> None:
    meta = {"excerpt": "E", "summary": "S"}
    assert item(meta, summary="Lead").summary == "E"
    assert item({}, summary="Lead  text").summary == "Lead text"
    body = "<h1>Head</h1><p><img src='https://x.org/i.png'></p><p>First para.</p><p>Second</p>"
    assert item(body=body).summary == "First para."
    assert item(body="").summary == ""


def test_body_text_is_not_decoded_twice() -> None:
    result = item(body="<h2>AT&amp;amp;T</h2><p>use &lt;b&gt; tags &amp;amp; more</p>")
    assert result.title == "AT&amp;T"
    assert result.summary == "use <b> tags &amp; more"


def test_summary_cut_at_word_boundary() -> None:
    words = "The quick brown fox jumps over the lazy dog. " * 20
    summary = item(body=f"<p>{words}</p>").summary
    assert summary.endswith(ELLIPSIS) and len(summary) <= 301
    assert collapse_whitespace(words).startswith(summary[:-1])
    assert summary[:-1].split(" ")[-1] in collapse_whitespace(words).split(" ")  # whole word
    assert not summary[:-1].endswith(" ")


def test_summary_cut_korean_without_spaces() -> None:
    text = "가나다라마바사아자차카타파하" * 30  # 420 syllables, no spaces
    summary = cut(text)
    assert summary == text[:300] + ELLIPSIS


def test_summary_never_splits_hangul_jamo() -> None:
    # NFD Hangul: each syllable is 2-3 jamo that form one grapheme cluster.
    text = unicodedata.normalize("NFD", "한글" * 200)
    summary = cut(text)
    kept = summary[:-1]
    assert len(summary) <= 301
    assert unicodedata.normalize("NFC", kept) == "한글" * (
        len(unicodedata.normalize("NFC", kept)) // 2
    )
    assert is_boundary(text, len(kept))


def test_summary_never_splits_emoji_zwj_sequences_or_flags() -> None:
    family = "👨\u200d👩\u200d👧\u200d👦"  # 7 code points, one cluster
    for unit in (family, "🇰🇷", "e\u0301", "👍🏽"):
        text = "x" + unit * 200
        kept = cut(text)[:-1]
        assert kept[1:] == unit * ((len(kept) - 1) // len(unit)), unit


_SUMMARY_ALPHABET = st.sampled_from(
    [
        *("a", "b", " ", "한", "中", "\n", "\x0b"),
        *("\u1100", "\u1161", "\u11a8"),  # Hangul jamo L, V, T
        *("\u0301", "\u200d", "\ufe0f", "\u0600"),  # combining mark, ZWJ, VS16, prepend
        *("👨", "🏽", "🇰", "🇷"),  # emoji, skin tone, regional indicators
    ]
)


@given(st.lists(_SUMMARY_ALPHABET, max_size=700).map("".join) | st.text(max_size=700))
@settings(max_examples=300, deadline=None)
def test_summary_cut_property(raw_text: str) -> None:
    text = collapse_whitespace(raw_text)
    summary = cut(text)
    assert len(summary) <= 301
    if summary == text:
        return
    assert summary.endswith(ELLIPSIS)
    kept = summary[: -len(ELLIPSIS)]
    assert text.startswith(kept)
    assert is_boundary(text, len(kept))


# -- content_html and content_text -----------------------------------------

ATTACKS = [
    "<script>alert('x')</script>",
    "<img src=x onerror=\"alert('x')\">",
    "<a href=\"javascript:alert('x')\">j</a>",
    "<a href=\"&#106;avascript:alert('x')\">e</a>",
    "<a href=\"java\tscript:alert('x')\">t</a>",
    '<a href="JaVaScRiPt:alert(1)">c</a>',
    '<a href="vbscript:msgbox(1)">v</a>',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<a href="data:text/html,<script>alert(1)</script>">d</a>',
    '<iframe src="https://evil.example/"></iframe>',
    "<style>body{background:url(javascript:alert(1))}</style>",
    "<svg onload=\"alert('x')\"><circle r=1 /></svg>",
    "<object data='x.swf'></object><embed src='x.swf'>",
    "<form action='https://evil.example'><input name=q></form>",
    '<p style="color:red" onclick="alert(1)" class="x">styled</p>',
    "<math><mi xlink:href='javascript:alert(1)'>m</mi></math>",
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_sanitiser_removes_attack(attack: str) -> None:
    out = item(body=f"<p>before</p>{attack}<p>after</p>").content_html.lower()
    for needle in ("<script", "alert(", "javascript:", "vbscript:", "data:", "<iframe", "<style"):
        assert needle not in out
    for needle in ("onerror", "onload", "onclick", "style=", "<svg", "<object", "<embed", "<form"):
        assert needle not in out
    assert "<p>before</p>" in out and "<p>after</p>" in out


def test_xml_illegal_characters_and_lone_surrogates_removed() -> None:
    result = item(body="<p>a&#x0b;b&#xFFFE;c\ud800d\x01e&#x1F;f</p>")
    assert result.content_html == "<p>abcdef</p>"
    assert result.content_text == "abcdef"


def test_relative_urls_resolve_against_the_documents_own_folder() -> None:
    body = (
        '<p><a href="/x">x</a> <a href="y.pdf?q=1#f">y</a> <img src="img/a.png">'
        ' <a href="#notes">notes</a> <a href="../other.md#part">other</a>'
        ' <img src="../images/a%20b.png" srcset="s.png 1x, ../l.png 2x, javascript:x 3x">'
        ' <video src="clip.mp4" poster="poster.jpg" controls></video>'
        ' <a href="../../../../etc/passwd">out</a></p>'
    )
    result = item({"id": "story-1"}, path="news/2024/post/index.md", body=body)
    html = result.content_html
    files = "https://news.example.com/files/"
    # Root-relative without a source site: the content root; no extension: a page there.
    assert 'href="https://news.example.com/items/x"' in html
    assert f'href="{files}news/2024/post/y.pdf?q=1#f"' in html
    assert f'src="{files}news/2024/post/img/a.png"' in html
    assert 'href="https://news.example.com/items/story-1#notes"' in html  # the item's own page
    assert 'href="https://news.example.com/items/news/2024/other#part"' in html  # a document
    assert f'src="{files}news/2024/images/a%20b.png"' in html
    assert f'srcset="{files}news/2024/post/s.png 1x, {files}news/2024/l.png 2x"' in html
    assert f'src="{files}news/2024/post/clip.mp4"' in html
    assert f'poster="{files}news/2024/post/poster.jpg"' in html
    # Out of the content root: never a /files/ URL (check names it; see test_resources).
    assert 'href="https://news.example.com/etc/passwd"' in html and "files/etc" not in html
    assert result.image == f"{files}news/2024/post/img/a.png"

    # Relative `image` front matter: the document's folder too; a source site for "/...".
    site = SiteSettings(
        base_url="https://news.example.com",
        id_prefix="tag:news.example.com,2024:",
        source_base_url="https://blog.example.org/sub",
    )
    own = norm(
        doc(
            {"image": "cover.jpg", "url": "https://blog.example.org/p/"},
            path="p/index.md",
            body='<img src="/img/x.png">',
        ),
        site,
    )
    assert own.image == f"{files}p/cover.jpg"
    assert 'src="https://blog.example.org/sub/img/x.png"' in own.content_html
    assert site_digest(site) != site_digest(SITE)  # a new source site renormalises


def test_allowed_markup_kept() -> None:
    body = (
        "<h2>T</h2><blockquote><p>q</p><footer><cite>Src</cite></footer></blockquote>"
        '<table><tr><td colspan="2">c</td></tr></table><a href="mailto:a@b.org" title="t">m</a>'
    )
    out = item(body=body).content_html
    for kept in ("<h2>T</h2>", "<blockquote>", "<cite>Src</cite>", 'colspan="2"', "mailto:a@b.org"):
        assert kept in out
    assert 'rel="noopener noreferrer"' in out


def test_deep_nesting_is_flattened_quickly() -> None:
    depth = 40_000
    body = "<div>" * depth + "deep text" + "</div>" * depth
    started = time.perf_counter()
    try:
        result = item(body=body)
    except SourceError:
        return
    elapsed = time.perf_counter() - started
    print(f"40,000 nested divs normalised in {elapsed:.3f} s")
    assert "deep text" in result.content_text
    assert result.content_html.count("<div>") <= MAX_DEPTH


def test_limit_nesting_keeps_ordinary_html_unchanged() -> None:
    ordinary = "<ul>" + "<li>item<p>text<br><img src=a.png>" * 500 + "</ul>"
    assert limit_nesting(ordinary) == ordinary


def test_content_text_separates_blocks() -> None:
    body = "<h1>Head</h1><p>One <b>bold</b>\n  word.</p><ul><li>a</li><li>b</li></ul><p>x<br>y</p>"
    assert item(body=body).content_text == "Head\n\nOne bold word.\n\na\n\nb\n\nx\ny"


# -- language --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("ko-KR", "ko"), ("EN", "en"), ("no", "no"), ("zh_Hant", "zh"), ("fil", "fil")],
)
def test_declared_language(value: str, expected: str) -> None:
    assert item({"lang": value}).language == expected
    assert item({"language": value}).language == expected


@pytest.mark.parametrize("value", ["english", "e", "12", "x-klingon"])
def test_invalid_declared_language_is_an_error(value: str) -> None:
    with pytest.raises(SourceError, match="'lang'"):
        item({"lang": value})


def test_undetermined_language_is_detected() -> None:
    body = "<p>북한이 상반기를 결산하는 노동당 중앙위원회 전원회의를 개최한다.</p>"
    assert item({"lang": "und"}, body=body).language == "ko"


def test_detected_language_and_default() -> None:
    assert item(body="<p>오늘 서울의 날씨는 맑고 따뜻하겠습니다.</p>").language == "ko"
    assert item(body="<p>Le gouvernement a annoncé de nouvelles mesures.</p>").language == "fr"
    korean_site = dataclasses.replace(SITE, default_language="ko")
    assert norm(doc(body="<p>12345 678</p>", path="1.md"), korean_site).language == "ko"
    assert norm(doc(body="<p>12345 678</p>", path="1.md")).language == "en"


# -- categories ------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "raw", "path", "expected"),
    [
        ({"categories": ["News", "World"]}, {}, "a.md", [("News", "news"), ("World", "world")]),
        ({"categories": "News Today"}, {}, "a.md", [("News Today", "news-today")]),
        ({"categories": "a, b"}, {}, "a.md", [("a", "a"), ("b", "b")]),
        ({"categories": ["a, b"]}, {}, "a.md", [("a, b", "a-b")]),
        ({"category": "정치"}, {"category": "Raw"}, "x/a.md", [("정치", "정치")]),
        ({}, {"category": "News Today"}, "x/a.md", [("News Today", "news-today")]),
        ({}, {}, "world/2024/a.md", [("world", "world")]),
        ({}, {}, "a.md", [("General", "general")]),
        (
            {"categories": ["C++ & Rust", " Spaced   out "]},
            {},
            "a.md",
            [("C++ & Rust", "c_plus_plus_and-rust"), ("Spaced out", "spaced-out")],
        ),
        ({"categories": ["News", "NEWS", "news!"]}, {}, "a.md", [("News", "news")]),
        ({"categories": ["!!!", "Ok"]}, {}, "a.md", [("Ok", "ok")]),
        ({"categories": ["!!!"]}, {"category": "Fallback"}, "a.md", [("Fallback", "fallback")]),
        # `all` is a grid word: its slug is marked, and no other name meets it.
        (
            {"categories": ["All", "category-all"]},
            {},
            "a.md",
            [("All", "_all"), ("category-all", "category-all")],
        ),
        (
            {"categories": ["Ｆｕｌｌ Ｗｉｄｔｈ", "हिन्दी समाचार"]},
            {},
            "a.md",
            [("Ｆｕｌｌ Ｗｉｄｔｈ", "full-width"), ("हिन्दी समाचार", "हिन्दी-समाचार")],
        ),
        ({"categories": [2024]}, {}, "a.md", [("2024", "2024")]),
    ],
)
def test_categories(
    meta: dict[str, object], raw: dict[str, Any], path: str, expected: list[tuple[str, str]]
) -> None:
    result = item(meta, path=path, **raw).categories
    assert result == tuple(Category(name, slug) for name, slug in expected)


# -- tags, image, authors --------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"tags": ["a", "b c", "a"]}, ("a", "b c")),
        ({"tags": "solo tag"}, ("solo tag",)),
        ({"tags": "x, y"}, ("x", "y")),
        ({"tags": ["bad\ufffe", None]}, ("bad",)),
        ({}, ()),
    ],
)
def test_tags(meta: dict[str, object], expected: tuple[str, ...]) -> None:
    assert item(meta).tags == expected


@pytest.mark.parametrize(
    ("meta", "body", "expected"),
    [
        ({"image": "https://cdn.example/a.jpg"}, "", "https://cdn.example/a.jpg"),
        ({"cover": "/img/c.png"}, "", "https://news.example.com/files/img/c.png"),
        ({"thumbnail": "t.png"}, "", "https://news.example.com/files/t.png"),
        (
            {"image": "javascript:alert(1)"},
            '<img src="https://x.org/b.png">',
            "https://x.org/b.png",
        ),
        (
            {},
            '<p>t</p><img src="data:image/png;base64,AA"><img src="b.png">',
            "https://news.example.com/files/b.png",
        ),
        ({}, "<p>no image</p>", None),
    ],
)
def test_image(meta: dict[str, object], body: str, expected: str | None) -> None:
    assert item(meta, body=body).image == expected


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"author": "Kim, Min-ji"}, ("Kim, Min-ji",)),
        ({"authors": ["A", "B", "A"]}, ("A", "B")),
        ({"authors": [{"name": "A", "email": "a@x"}, "B"]}, ("A", "B")),
        ({"author": {"name": "Solo"}}, ("Solo",)),
        ({}, ("feedsvc",)),
    ],
)
def test_authors(meta: dict[str, object], expected: tuple[str, ...]) -> None:
    assert item(meta).authors == expected


# -- published, updated, draft ---------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-06", "2024-05-06T00:00:00+09:00"),
        ("2024-05-06T10:30:00+02:00", "2024-05-06T17:30:00+09:00"),
        ("2024-05-06T10:30:00Z", "2024-05-06T19:30:00+09:00"),
        ("2024-05-06 10:30", "2024-05-06T10:30:00+09:00"),
        ("2024-05-06 10:30:15", "2024-05-06T10:30:15+09:00"),
        ("2024/5/6", "2024-05-06T00:00:00+09:00"),
        ("Mon, 06 May 2024 10:30:00 +0000", "2024-05-06T19:30:00+09:00"),
        (datetime(2024, 5, 6, 10, 30, tzinfo=UTC), "2024-05-06T19:30:00+09:00"),  # TOML
        (datetime(2024, 5, 6, 10, 30), "2024-05-06T10:30:00+09:00"),  # TOML local
        (date(2024, 5, 6), "2024-05-06T00:00:00+09:00"),  # TOML date
    ],
)
def test_published_from_front_matter(value: object, expected: str) -> None:
    assert item({"date": value}).published.isoformat() == expected


def test_published_offset_is_kept_as_the_instant() -> None:
    result = item({"date": "2024-05-06T10:30:00-05:00"})
    assert result.published == datetime(2024, 5, 6, 15, 30, tzinfo=UTC)


def test_published_aliases_and_precedence() -> None:
    assert item({"published": "2024-01-02"}).published.date() == date(2024, 1, 2)
    assert item({"pubDate": "2024-01-03"}).published.date() == date(2024, 1, 3)
    assert item({"date": "2024-01-01", "pubDate": "2024-01-03"}).published.day == 1
    raw = {"published": datetime(2024, 11, 13, 15, 42, 35)}
    assert item({}, path="2020-01-01-a.md", **raw).published.isoformat() == (
        "2024-11-13T15:42:35+09:00"
    )
    assert item({}, path="news/2023-02-28-story.md").published.isoformat() == (
        "2023-02-28T00:00:00+09:00"
    )
    assert item({}, path="2023-02-30-x-2023-03-01.md").published.day == 1  # 02-30 skipped
    assert item({}, path="2024-13-45.md").published == FIRST_SEEN
    assert item({}, path="12024-01-01.md").published == FIRST_SEEN


@pytest.mark.parametrize(
    "value",
    [
        "2024-13-45",
        "yesterday",
        "12:30:00x",
        "2023-01-29 18:30:22 2023 -0800",  # accepted by Jekyll, not by feedsvc
    ],
)
def test_unreadable_date_falls_to_the_next_source_with_a_warning(value: str) -> None:
    done = normalise_document(
        doc({"date": value}, path="n/2023-01-29-post.md"),
        SITE,
        first_seen=FIRST_SEEN,
        changed_at=None,
    )
    assert done.item.published.isoformat() == "2023-01-29T00:00:00+09:00"
    assert done.dates.published_from == "file name"
    assert done.warnings == (
        f"front matter 'date': {value!r} is not a valid date;"
        " published falls back to the file name",
    )
    # No file-name date: the first-seen time, guessed.
    done = normalise_document(
        doc({"date": value, "updated": value}), SITE, first_seen=FIRST_SEEN, changed_at=None
    )
    assert done.item.published == FIRST_SEEN
    assert done.dates.published_guessed and done.dates.updated_guessed
    assert len(done.warnings) == 2
    assert "front matter 'updated'" in done.warnings[1]


def test_naive_times_in_a_dst_gap() -> None:
    new_york = dataclasses.replace(SITE, timezone="America/New_York")
    result = norm(doc({"date": "2024-03-10 02:30"}), new_york)  # does not exist locally
    assert result.published == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)
    assert result.published.isoformat() == "2024-03-10T03:30:00-04:00"


def test_updated() -> None:
    assert item({"date": "2024-01-01", "updated": "2024-02-01"}).updated.day == 1
    assert item({"date": "2024-01-01", "lastmod": "2024-02-03"}).updated.day == 3
    assert item({"date": "2024-01-01", "modified": "2024-02-04"}).updated.day == 4
    raw_updated = datetime(2024, 11, 13, 15, 43, 40)
    assert item({}, updated=raw_updated).updated.isoformat() == "2024-11-13T15:43:40+09:00"
    assert item({}).updated == CHANGED_AT
    assert item({}).updated.utcoffset() == timedelta(hours=9)


def test_updated_is_published_until_the_content_really_changes() -> None:
    never_changed = normalise_document(
        doc({"date": "2013-05-06"}), SITE, first_seen=FIRST_SEEN, changed_at=None
    )
    assert never_changed.item.updated == never_changed.item.published
    assert never_changed.item.updated.year == 2013  # not the checkout's file time
    assert never_changed.dates.updated_from == "published"
    assert not never_changed.dates.updated_guessed
    changed = normalise_document(
        doc({"date": "2013-05-06"}), SITE, first_seen=FIRST_SEEN, changed_at=CHANGED_AT
    )
    assert changed.item.updated == CHANGED_AT
    assert changed.dates.updated_guessed


def test_updated_is_never_before_published() -> None:
    result = item({"date": "2024-06-01", "updated": "2024-01-01"})
    assert result.updated == result.published
    assert item({"date": "2030-01-01"}).updated == item({"date": "2030-01-01"}).published


@pytest.mark.parametrize(
    ("meta", "draft"),
    [
        ({"draft": "true"}, True),
        ({"draft": "Yes"}, True),
        ({"draft": "on"}, True),
        ({"draft": "1"}, True),
        ({"draft": True}, True),
        ({"draft": "false"}, False),
        ({"draft": False}, False),
        ({"published": "false"}, True),
        ({"published": "no"}, True),
        ({"published": "off"}, True),
        ({"published": "0"}, True),
        ({"published": False}, True),
        ({"published": "true"}, False),
        ({"published": "2024-01-01"}, False),
        ({}, False),
    ],
)
def test_draft(meta: dict[str, object], draft: bool) -> None:
    assert item(meta).draft is draft


def test_published_flag_is_not_a_date() -> None:
    assert item({"published": "false"}).published == FIRST_SEEN
    assert item({"published": "false", "date": "2024-01-01"}).published.year == 2024


def test_draft_that_is_not_a_boolean_is_an_error() -> None:
    with pytest.raises(SourceError, match="'draft': 'maybe' is not true or false"):
        item({"draft": "maybe"})


# -- hygiene, hash, determinism --------------------------------------------


def test_every_string_field_is_xml_safe() -> None:
    dirty = "x\x0b\ufffe\ud800\x7f"
    meta = {
        "id": f"id{dirty}",
        "title": f"t{dirty}",
        "summary": f"s{dirty}",
        "tags": [f"g{dirty}"],
        "categories": [f"c{dirty}"],
        "author": f"a{dirty}",
        "url": f"https://example.com/u{dirty}",
    }
    result = item(meta, body=f"<p>b{dirty}</p>")
    for value in (
        result.id,
        result.guid,
        result.title,
        result.summary,
        result.url,
        result.content_html,
        result.content_text,
        *result.tags,
        *result.authors,
        result.categories[0].name,
        result.categories[0].slug,
    ):
        assert not re.search(
            "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]", value
        )
    assert result.title == "tx"


def test_content_hash() -> None:
    first, second = item({"title": "A"}), item({"title": "A"})
    assert first.content_hash and first.content_hash == second.content_hash
    assert item({"title": "B"}).content_hash != first.content_hash
    changed = normalise(
        doc({"title": "A"}),
        SITE,
        first_seen=FIRST_SEEN,
        changed_at=CHANGED_AT + timedelta(seconds=1),
    )
    assert changed.content_hash != first.content_hash


def test_site_digest() -> None:
    assert site_digest(SITE) == site_digest(dataclasses.replace(SITE))
    assert site_digest(SITE) != site_digest(dataclasses.replace(SITE, base_url="https://x.org"))
    assert site_digest(SITE) != site_digest(dataclasses.replace(SITE, timezone="UTC"))
    assert site_digest(SITE) == site_digest(dataclasses.replace(SITE, title="Other title"))


_any_text = st.text(max_size=400)


@given(
    title=_any_text,
    body=_any_text,
    category=_any_text,
    path=st.from_regex(r"[a-z0-9_-]{1,8}(/[a-z0-9_-]{1,8}){0,2}\.md", fullmatch=True),
)
@settings(max_examples=100, deadline=None)
def test_normalising_twice_gives_equal_items(
    title: str, body: str, category: str, path: str
) -> None:
    raw = doc(
        {"title": title, "categories": [category]}, body=f"<p>{html.escape(body)}</p>", path=path
    )
    first, second = norm(raw), norm(raw)
    assert first == second
    assert first.title and first.content_hash == second.content_hash
    assert len(first.summary) <= 301
    assert first.content_text.startswith(first.summary.removesuffix(ELLIPSIS))


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("Q&amp;A on <tariffs>", "Q&A on <tariffs>"),
        ("<b>Bold</b> claim", "Bold claim"),
        ('<span class="x">A</span> <em>B</em>', "A B"),
        ("x < y and y > z", "x < y and y > z"),
        ("<!-- note -->Title", "Title"),
    ],
)
def test_written_titles_lose_html_tags_but_keep_angle_bracket_text(
    written: str, shown: str
) -> None:
    from feedsvc.normalise.fields import plain_text

    assert plain_text(written) == shown


def test_content_hash_is_the_hash_of_the_asdict_form() -> None:
    """content_hash builds its mapping by hand for speed; stored hashes must not move."""
    import dataclasses
    import hashlib
    import json

    from feedsvc.normalise import content_hash
    from feedsvc.types import Category, Item

    item = Item(
        id="a",
        guid="tag:x,2024:a",
        source_path="a.md",
        url="https://x.example/a",
        title="Tïtle \u2028",
        summary="s",
        content_html="<p>h</p>",
        content_text="h",
        language="ko",
        categories=(Category("News Today", "news-today"), Category("정치", "정치")),
        tags=("t1", "t2"),
        image=None,
        authors=("A", "B"),
        published=datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=9))),
        updated=datetime(2024, 1, 3, tzinfo=UTC),
        draft=True,
    )
    fields = dataclasses.asdict(item)
    fields.pop("content_hash")
    payload = json.dumps(
        fields, default=datetime.isoformat, sort_keys=True, ensure_ascii=True, allow_nan=False
    )
    expected = hashlib.blake2b(payload.encode("ascii"), digest_size=20).hexdigest()
    assert content_hash(item) == expected
    assert set(fields) | {"content_hash"} == {f.name for f in dataclasses.fields(Item)}
