"""Bodies of real posts: Markdown always Markdown, template tags, prose, hostile text.

Every test goes through ``parse_document`` and ``normalise``, the way a file
becomes an item, and asserts what a reader of the feed would see.
"""

from __future__ import annotations

import os
import subprocess
import sys
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import feedsvc_env
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.errors import SourceError
from feedsvc.normalise import normalise
from feedsvc.normalise.slug import slugify
from feedsvc.normalise.urls import guid_for
from feedsvc.parse import parse_document
from feedsvc.settings import SiteSettings
from feedsvc.types import Item

SEEN = datetime(2024, 11, 14, 0, 30, tzinfo=UTC)
SITE = SiteSettings(
    base_url="https://news.example.com",
    id_prefix="tag:news.example.com,2024:",
    default_language="ko",
)


def item_of(path: str, text: str | bytes, site: SiteSettings = SITE) -> Item:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return normalise(parse_document(path, data), site, first_seen=SEEN, changed_at=SEEN)


def refused(path: str, text: str | bytes) -> str:
    with pytest.raises(SourceError) as info:
        item_of(path, text)
    return info.value.reason


# -- 1. Markdown is Markdown ------------------------------------------------


@pytest.mark.parametrize(
    "first",
    ["<kbd>Ctrl</kbd>+<kbd>C</kbd> stops it.", "<style>p { color: red }</style>", "<!-- toc -->"],
)
def test_markdown_file_starting_with_html_is_rendered_as_markdown(first: str) -> None:
    body = f"{first}\n\n## Next step\n\n```sh\nhugo server\n```\n"
    got = item_of("post.md", f"---\ntitle: T\n---\n{body}")
    assert "<h2>Next step</h2>" in got.content_html
    assert '<pre><code class="language-sh">hugo server\n</code></pre>' in got.content_html
    assert "##" not in got.content_text and "```" not in got.content_text
    assert "color: red" not in got.content_html  # raw HTML still went through the sanitiser


def test_front_matter_markup_key_decides_for_txt_files() -> None:
    got = item_of("a.txt", "---\ntitle: T\nmarkup: md\n---\n<kbd>K</kbd>\n\n## Step\n")
    assert "<h2>Step</h2>" in got.content_html


def test_markdown_extensions_authors_use() -> None:
    body = (
        "## Setup {#setup}\n\n"
        "> [!NOTE]\n> Back up first.\n\n"
        "Term\n: Its definition\n\n"
        "A claim[^1].\n\n[^1]: The source.\n\n"
        "- [x] done\n- [ ] todo\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "~~old~~ https://example.com/x\n"
    )
    html = item_of("p.md", f"---\ntitle: T\n---\n{body}").content_html
    assert '<h2 id="setup">Setup</h2>' in html
    assert '<div class="markdown-alert markdown-alert-note">' in html
    assert "<dt>Term</dt>" in html and "<dd>Its definition</dd>" in html
    assert 'class="footnote-ref"' in html and "The source." in html
    assert "☑ done" in html and "☐ todo" in html
    assert "<td>1</td>" in html and "<s>old</s>" in html
    assert '<a href="https://example.com/x"' in html


# -- 2. template tags ---------------------------------------------------------


def test_code_shortcode_keeps_every_line_escaped() -> None:
    body = (
        '{{< code lang="xml" file="AndroidManifest.xml" >}}\n'
        "<manifest>\n"
        '    <uses-permission android:name="android.permission.INTERNET"/>\n'
        "</manifest>\n"
        "{{< /code >}}\n"
    )
    got = item_of("p.md", f"---\ntitle: T\n---\n{body}")
    assert (
        '<pre><code class="language-xml">&lt;manifest&gt;\n'
        '    &lt;uses-permission android:name="android.permission.INTERNET"/&gt;\n'
        "&lt;/manifest&gt;\n</code></pre>"
    ) in got.content_html
    assert '<uses-permission android:name="android.permission.INTERNET"/>' in got.content_text


def test_liquid_highlight_is_one_code_block() -> None:
    body = "Intro.\n\n{% highlight ruby %}\ndef foo\n  puts 'x' # > 1\nend\n{% endhighlight %}\n"
    html = item_of("p.md", f"---\ntitle: T\n---\n{body}").content_html
    assert "<blockquote>" not in html
    assert "<pre><code class=\"language-ruby\">def foo\n  puts 'x' # &gt; 1\nend\n" in html


def test_escaped_shortcodes_show_literally_and_raw_unwraps() -> None:
    body = (
        'Write `{{</* figure src="x" */>}}` or {{%/* note */%}}.\n\n'
        "{% raw %}\n```liquid\n{{ page.title }}\n```\n{% endraw %}\n"
    )
    got = item_of("p.md", f"---\ntitle: T\n---\n{body}")
    assert '<code>{{&lt; figure src="x" &gt;}}</code>' in got.content_html
    assert "{{% note %}}" in got.content_text
    assert '<code class="language-liquid">{{ page.title }}\n</code>' in got.content_html


@pytest.mark.parametrize("tag", ["", ' {{< figure src="x.png" >}}'])
@pytest.mark.parametrize("name", ["p.md", "p.html"])
def test_private_use_characters_that_mark_fragments_never_reach_a_feed(tag: str, name: str) -> None:
    # U+E000 and U+E001 hold a shortcode's place while Markdown renders: an
    # author's own are dropped, with or without a template tag in the body.
    got = item_of(name, f"---\ntitle: T\n---\nWord \ue0000\ue001 and \ue001end.{tag}\n")
    for field in (got.content_html, got.content_text, got.summary):
        assert "\ue000" not in field and "\ue001" not in field
    assert "Word 0 and end." in got.content_text


def test_unknown_tags_go_and_their_text_stays_everywhere() -> None:
    text = (
        "---\ntitle: 'Release {{< param version >}} notes'\n"
        "---\n{{% private %}}\nThe [critical bug]({{ site.repository }}/issues/1794) is fixed."
        "\n{{% /private %}}\n"
    )
    got = item_of("p.md", text)
    assert got.title == "Release notes"
    assert got.summary == "The critical bug is fixed."
    assert "{{" not in got.content_html and "{%" not in got.content_html
    # Root-relative, no site.source_base_url: a page of the content root
    # (docs/documents-and-resources.md, "Relative references").
    assert 'href="https://news.example.com/items/issues/1794"' in got.content_html


def test_figure_shortcode_is_an_image() -> None:
    body = '{{< figure src="https://img.example.com/a.png" alt="A cat" caption="Our cat" >}}\n'
    got = item_of("p.md", f"---\ntitle: T\n---\n{body}\nText.\n")
    assert got.image == "https://img.example.com/a.png"
    assert "<figcaption>Our cat</figcaption>" in got.content_html


# -- 3. summaries are prose -------------------------------------------------------


def test_summary_skips_code_math_tables_and_comments() -> None:
    body = (
        "<!-- more -->\n\n```sql\nSELECT * FROM tbl ORDER BY RANDOM() LIMIT 1;\n```\n\n"
        "$$\nE = mc^2\n$$\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "Random rows in SQLite, and why $n$ matters.\n"
    )
    got = item_of("p.md", f"---\ntitle: T\n---\n{body}")
    assert got.summary == "Random rows in SQLite, and why matters."


# -- 4. language from prose ---------------------------------------------------


def test_language_comes_from_prose_not_code() -> None:
    body = (
        "PostgreSQLでランダムに行を選ぶ方法です。\n\n"
        "```sql\nSELECT * FROM t ORDER BY random();\n```\n"
    )
    assert item_of("p.md", f"---\ntitle: ランダムな行\n---\n{body}").language == "ja"
    code_only = "```bash\nhugo completion bash > /etc/bash_completion.d/hugo\n```\n"
    site = SiteSettings(default_language="en")
    assert item_of("p.md", f"---\ntitle: hugo\n---\n{code_only}", site).language == "en"


def test_script_decides_before_lingua() -> None:
    english = "This post quotes one Korean word, 안녕, in an English paragraph about greetings."
    assert item_of("p.md", f"---\ntitle: Greetings\n---\n{english}\n").language == "en"
    korean = "Kubernetes의 Deployment와 Service를 설정하는 방법을 정리했습니다."
    assert item_of("p.md", f"---\ntitle: k8s\n---\n{korean}\n").language == "ko"


def test_prices_are_not_math() -> None:
    got = item_of("p.md", "---\ntitle: T\n---\nIt costs $5 and $10 a month.\n")
    assert got.summary == "It costs $5 and $10 a month."


def test_lang_all_is_refused() -> None:
    reason = refused("p.md", "---\ntitle: T\nlang: all\n---\nBody.\n")
    assert reason == (
        "front matter 'lang': 'all' is reserved in the feed grid (/feeds/all/...), not a language"
    )


# -- 5. ids ---------------------------------------------------------------------------

# The id scheme is final (docs/ids-and-slugs.md): these never change again.
PINNED_GUIDS = {
    "000_a08af95bc486be6a.txt": "tag:news.example.com,2024:000_a08af95bc486be6a",
    "news/2024/a.md": "tag:news.example.com,2024:news/2024/a",
    "a b/c&d.md": "tag:news.example.com,2024:a%20b/c%26d",
    "cpp/이펙티브 C++/item-1.md": (
        "tag:news.example.com,2024:cpp/%EC%9D%B4%ED%8E%99%ED%8B%B0%EB%B8%8C%20C%2B%2B/item-1"
    ),
    "뉴스/9.md": "tag:news.example.com,2024:%EB%89%B4%EC%8A%A4/9",
    "ニュース/記事.md": (
        "tag:news.example.com,2024:%E3%83%8B%E3%83%A5%E3%83%BC%E3%82%B9/%E8%A8%98%E4%BA%8B"
    ),
}


@pytest.mark.parametrize(("path", "guid"), sorted(PINNED_GUIDS.items()))
def test_guid_of_a_path_never_changes(path: str, guid: str) -> None:
    got = item_of(path, "---\ntitle: T\n---\nBody.\n")
    assert got.guid == guid
    assert got.guid.isascii()


def test_declared_iri_ids_are_mapped_to_uris() -> None:
    assert guid_for("tag:example.com,2020:정치", "tag:x,2024:") == (
        "tag:example.com,2020:%EC%A0%95%EC%B9%98"
    )
    assert guid_for("urn:uuid:6e8bc430", "tag:x,2024:") == "urn:uuid:6e8bc430"


# -- 6. slugs ------------------------------------------------------------------------------


def test_c_cpp_csharp_get_three_slugs() -> None:
    assert [slugify(n) for n in ("C", "C++", "C#")] == ["c", "c_plus_plus", "c_sharp"]
    assert slugify("C Sharp") == "c-sharp" != slugify("C#")
    assert {slugify(n) for n in ("News", "news", " NEWS ")} == {"news"}
    assert slugify("All") == "_all"


_SPELLED_SYMBOLS = "+#&@%"


def meaningful(name: str) -> tuple[str, ...]:
    """The documented rule, read independently: runs of letters, digits and marks,
    and each of the five symbols, after NFKC and lowercasing."""
    tokens: list[str] = []
    word = ""
    for ch in unicodedata.normalize("NFKC", name).lower():
        if unicodedata.category(ch)[0] in "LNM":
            word += ch
            continue
        if word:
            tokens.append(word)
            word = ""
        if ch in _SPELLED_SYMBOLS:
            tokens.append(ch)
    if word:
        tokens.append(word)
    return tuple(tokens)


NAME_PARTS = st.sampled_from(["c", "C", "plus", "sharp", "and", "all", "뉴스", "9", "ｃ"])
NAMES = st.lists(
    st.one_of(NAME_PARTS, st.sampled_from(list("+#&@% -_.!/"))), min_size=1, max_size=6
).map("".join)


@settings(max_examples=300, deadline=None)
@given(NAMES, NAMES)
def test_slugs_meet_only_when_names_differ_in_nothing_meaningful(a: str, b: str) -> None:
    if meaningful(a) == ("all",) or meaningful(b) == ("all",):
        return  # the grid word is marked: pinned above
    assert (slugify(a) == slugify(b)) == (meaningful(a) == meaningful(b)), (a, b)


# -- 7. hostile input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        (
            "title: !!python/object/apply:os.system ['echo pwned']",
            "!!python/object/apply:os.system",
        ),
        ("excerpt: !include ../../secrets.yml", "!include"),
        ("image: !!binary aGVsbG8=", "!!binary"),
        ("tags: [a, !custom b]", "!custom"),
    ],
)
def test_yaml_tags_are_refused_with_their_line(line: str, shown: str) -> None:
    reason = refused("p.md", f"---\nid: x\n{line}\n---\nBody.\n")
    assert (
        reason
        == f"bad YAML front matter: the tag {shown} is not allowed (only plain values) (line 3)"
    )


def test_standard_yaml_tags_are_plain_values() -> None:
    got = item_of("p.md", "---\ntitle: !!str 0123\n---\nBody.\n")
    assert got.title == "0123"


def test_almost_utf8_is_utf8_with_a_warning() -> None:
    text = "---\ntitle: 잘못된 UTF-8\n---\n" + "잘못된 UTF-8 바이트가 있는 한국어 문서입니다.\n" * 3
    data = text.encode("utf-8")
    cut = data.index("바이트".encode()) + len("바이트".encode())
    data = data[:cut] + b"\xff\xfe\xfd\xfc" + data[cut:]
    raw = parse_document("p.md", data)
    assert raw.warnings == (
        f"not valid UTF-8 at byte offsets {cut}, {cut + 1}, {cut + 2}, {cut + 3}: "
        "each bad sequence replaced with U+FFFD",
    )
    got = normalise(raw, SITE, first_seen=SEEN, changed_at=SEEN)
    assert got.title == "잘못된 UTF-8"
    assert "바이트\ufffd\ufffd\ufffd\ufffd가" in got.content_text


def test_cp949_files_still_decode() -> None:
    got = item_of("p.txt", "제목\n\n입력된 본문입니다. Mostly ASCII text here.\n".encode("cp949"))
    assert got.title == "제목"
    assert "입력된 본문" in got.content_text


def test_titles_are_plain_text_without_script() -> None:
    got = item_of("p.md", "---\ntitle: \"<script>alert('t')</script> & <b>굵은</b>\"\n---\nBody.\n")
    assert got.title == "& 굵은"


def test_check_reports_each_hostile_file(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    files = {
        "python.md": "---\ntitle: !!python/object/apply:os.system ['echo pwned']\n---\nBody.\n",
        "include.md": "---\ntitle: Secrets\nexcerpt: !include ../../secrets.yml\n---\nBody.\n",
        "lang-all.md": "---\ntitle: All\nlang: all\n---\nBody.\n",
        "script.md": "---\ntitle: <script>alert('t')</script> & <b>굵은</b>\n---\nBody.\n",
    }
    for name, text in files.items():
        (content / name).write_text(text, encoding="utf-8")
    text = "---\ntitle: 잘못된 UTF-8\n---\n" + "잘못된 UTF-8 바이트가 있는 한국어 문서입니다.\n" * 3
    data = text.encode("utf-8")
    (content / "bad-utf8.md").write_bytes(data[:60] + b"\xff\xfe\xfd\xfc" + data[60:])
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc", "check"],
        env={**os.environ, **feedsvc_env(tmp_path, content)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    out = result.stdout
    assert (
        "python.md: ERROR bad YAML front matter: the tag !!python/object/apply:os.system "
        "is not allowed (only plain values) (line 2)\n" in out
    )
    assert (
        "include.md: ERROR bad YAML front matter: the tag !include is not allowed "
        "(only plain values) (line 3)\n" in out
    )
    assert (
        "lang-all.md: ERROR front matter 'lang': 'all' is reserved in the feed grid "
        "(/feeds/all/...), not a language\n" in out
    )
    assert (
        "bad-utf8.md:\n  warning:    not valid UTF-8 at byte offsets 60, 61, 62, 63: "
        "each bad sequence replaced with U+FFFD\n" in out
    )
    assert "  title:      & 굵은\n" in out
    assert "pwned" not in out and "secrets.yml" not in out  # refused, never published
