"""Posts shaped like real Hugo and Jekyll folders, pinned by goldens (tests/data/bodies/).

Each fixture's item is pinned in ``tests/golden/bodies/`` with its exact
``content_html``; beside the goldens, the assertions a golden cannot make:
every line of code in a fixture reaches a ``<pre>`` verbatim, and no template
tag reaches a reader.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import lxml.html
import pytest
from conftest import DATA, GOLDEN, assert_golden

from feedsvc.normalise import normalise
from feedsvc.parse import parse_document
from feedsvc.settings import SiteSettings
from feedsvc.types import Item

FIXTURES = DATA / "bodies"
PATHS = sorted(p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.md"))
SEEN = datetime(2024, 11, 14, tzinfo=UTC)
SITE = SiteSettings(
    base_url="https://news.example.com",
    id_prefix="tag:news.example.com,2024:",
    default_language="ko",
)

# Where a fixture's source holds code: fences, code-carrying shortcodes and
# Liquid highlight blocks. Read here with plain patterns, independently of
# feedsvc.parse.templates, so the test does not share its bugs.
_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```$", re.S | re.M)
_SHORTCODE = re.compile(
    r"\{\{< (highlight|code|code-toggle)\b[^\n]*>\}\}\n(.*?)\{\{< /\1 >\}\}", re.S
)
_HIGHLIGHT = re.compile(r"\{% highlight [^\n]*%\}\n(.*?)\{% endhighlight %\}", re.S)
# How the site shows an escaped shortcode inside code: the literal shortcode.
_ESCAPED = re.compile(r"\{\{([<%])/\*(.*?)\*/([>%])\}\}")


def item_for(path: str) -> Item:
    raw = parse_document(path, (FIXTURES / path).read_bytes())
    return normalise(raw, SITE, first_seen=SEEN, changed_at=SEEN)


def code_lines(source: str) -> list[str]:
    blocks = [m.group(1) for m in _FENCE.finditer(source)]
    blocks += [m.group(2) for m in _SHORTCODE.finditer(source)]
    blocks += [m.group(1) for m in _HIGHLIGHT.finditer(source)]
    lines = []
    for block in blocks:
        block = _ESCAPED.sub(r"{{\1\2\3}}", block)
        block = re.sub(r"\{% (?:end)?raw %\}\n?", "", block)
        lines += [line for line in block.splitlines() if line.strip()]
    return lines


def as_json(item: Item) -> str:
    shown = {
        "guid": item.guid,
        "url": item.url,
        "title": item.title,
        "summary": item.summary,
        "language": item.language,
        "categories": [[c.name, c.slug] for c in item.categories],
        "image": item.image,
        "content_html": item.content_html,
    }
    return json.dumps(shown, ensure_ascii=False, indent=2) + "\n"


def golden_name(path: str) -> str:
    return re.sub(r"[^\w.-]+", "_", path.removesuffix(".md")) + ".json"


@pytest.mark.parametrize("path", PATHS)
def test_fixture_item_golden(path: str) -> None:
    assert_golden(GOLDEN / "bodies" / golden_name(path), as_json(item_for(path)))


@pytest.mark.parametrize("path", PATHS)
def test_every_code_line_is_inside_pre_verbatim(path: str) -> None:
    source = (FIXTURES / path).read_text(encoding="utf-8")
    item = item_for(path)
    tree = lxml.html.fragment_fromstring(item.content_html, create_parent="div")
    pre_text = "\n".join(pre.text_content() for pre in tree.iter("pre"))
    for line in code_lines(source):
        assert line in pre_text, (path, line)


def test_the_fixtures_hold_code_of_every_kind() -> None:
    """The two checks above would pass on a folder without code: make sure it has some."""
    sources = {p: (FIXTURES / p).read_text(encoding="utf-8") for p in PATHS}
    assert len(PATHS) >= 12
    assert sum(len(code_lines(s)) for s in sources.values()) >= 40
    everything = "\n".join(sources.values())
    for needle in ("{{< code ", "{{< highlight ", "{{< code-toggle ", "{% highlight ", "{% raw %}"):
        assert needle in everything, needle
    assert "<uses-permission" in everything


@pytest.mark.parametrize("path", PATHS)
def test_no_template_tag_reaches_a_reader(path: str) -> None:
    item = item_for(path)
    tree = lxml.html.fragment_fromstring(item.content_html, create_parent="div")
    for code in list(tree.iter("pre", "code")):  # shown literally in code, as the site does
        code.drop_tree()
    prose = tree.text_content()
    for text in (prose, item.title, item.summary):
        assert not re.search(r"\{\{|\{%|%\}|\}\}", text), (path, text)


def test_what_readers_see_in_the_shapes_of_the_issue() -> None:
    android = item_for("hugo-docs/android-permissions.md")
    assert (
        "    &lt;uses-permission android:name=&quot;android.permission.INTERNET&quot;/&gt;"
        in android.content_html.replace('"', "&quot;")
    )
    assert android.summary.startswith("Apps that talk to a server")
    assert android.image == "https://news.example.com/files/images/permissions.png"
    jekyll = item_for("jekyll/_posts/2023-01-29-liquid-highlight.md")
    assert jekyll.title == "Fixing the build"
    assert "<blockquote>" not in jekyll.content_html
    assert "Remember to update the changelog" not in jekyll.content_text
    assert '<pre><code class="language-ruby">' in jekyll.content_html
    ja = item_for("ja/sql-random.md")
    assert ja.language == "ja" and not ja.summary.startswith("SELECT")
    assert "O(n" not in ja.summary
    slugs = {item_for(f"lang/{name}.md").categories[0].slug for name in ("c", "cpp", "csharp")}
    assert slugs == {"c", "c_plus_plus", "c_sharp"}
    for name in ("kbd-first", "style-first", "comment-first"):
        html = item_for(f"lang/{name}.md").content_html
        assert "<h2>Next step</h2>" in html and "## Next" not in html, name
