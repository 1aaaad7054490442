"""Site-generator template tags in content: Hugo shortcodes and Liquid; owns what each becomes.

Hugo and Jekyll folders carry template syntax inside their posts. The site
generator would replace it before a reader sees the page; feedsvc has no
templates to run, so each tag is turned into what a reader of the built page
would see, or removed. The table of every tag and its outcome is
``docs/markdown-and-templates.md``; this module is the only place that knows
the syntax.

- Hugo: ``{{< name args >}}`` and ``{{% name args %}}``, their closing forms
  ``{{< /name >}}``, self-closing ``{{< name />}}``, and the escaped forms
  ``{{</* name */>}}`` / ``{{%/* name */%}}`` that documentation uses to show a
  shortcode literally.
- Liquid: ``{% tag args %}``, ``{{ expression }}``, ``{% raw %}…{% endraw %}``,
  ``{% highlight lang %}…{% endhighlight %}``, ``{%- -%}`` whitespace control.

Code stays code: the text of a code-carrying tag (``highlight``, ``code``,
``code-toggle``, and any paired shortcode whose inner text is not Markdown)
becomes ``<pre><code class="language-…">`` with its characters HTML-escaped
here, so it never reaches the sanitiser as markup. Inside code that the body
already has (Markdown fences and code spans, HTML ``<pre>``/``<code>``), only
the escaped shortcodes are unescaped and ``raw`` markers dropped: code is never
rewritten.

Markdown bodies get placeholders: fragments of HTML (code blocks, figures,
literal shortcodes) are replaced by a private-use marker before Markdown
runs, and put back into the rendered HTML by ``restore``. Markdown never sees
them, so a ``<`` inside code cannot become a tag and a fence cannot split it.

Every search is bounded and each failed search for a closing tag is
remembered, so the scan stays linear in the size of the body.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field

# Private-use code points framing a placeholder number; removed from the input
# first, so a body can never forge a placeholder.
_OPEN_MARK = "\ue000"
_CLOSE_MARK = "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN_MARK}(\\d+){_CLOSE_MARK}")
_BLOCK_PLACEHOLDER = re.compile(f"<p>{_OPEN_MARK}(\\d+){_CLOSE_MARK}</p>")

# Shortcodes whose inner text is code (Hugo's built-in `highlight`, the Hugo
# docs' `code` and `code-toggle`, and the names themes commonly use).
CODE_SHORTCODES = frozenset(
    {"highlight", "code", "code-toggle", "codeblock", "code-block", "codefile"}
    | {"prism", "syntax", "source", "sourcecode", "snippet", "terminal", "console"}
    | {"shell", "output", "file", "datafile"}
)
# Parameters that say a shortcode's inner text is code in that language.
_LANGUAGE_PARAMS = ("lang", "language", "syntax", "type")
_FILE_PARAMS = ("file", "filename", "title")
# Shortcodes that become an image (Hugo's `figure`; themes' image shortcodes).
IMAGE_SHORTCODES = frozenset({"figure", "img", "image", "imgproc", "picture", "photo"})
# Shortcodes whose output is a link to an outside page, and how to build it.
_EMBED_URLS: dict[str, Callable[[list[str], dict[str, str]], str | None]] = {
    "youtube": lambda pos, kw: _url("https://www.youtube.com/watch?v=", kw.get("id"), pos, 0),
    "vimeo": lambda pos, kw: _url("https://vimeo.com/", kw.get("id"), pos, 0),
    "gist": lambda pos, kw: (
        f"https://gist.github.com/{_safe_part(pos[0])}/{_safe_part(pos[1])}"
        if len(pos) >= 2
        else None
    ),
    "tweet": lambda pos, kw: (
        f"https://twitter.com/{_safe_part(kw.get('user', 'i'))}/status/{_safe_part(kw['id'])}"
        if "id" in kw
        else None
    ),
    "x": lambda pos, kw: (
        f"https://x.com/{_safe_part(kw.get('user', 'i'))}/status/{_safe_part(kw['id'])}"
        if "id" in kw
        else None
    ),
    "instagram": lambda pos, kw: _url("https://www.instagram.com/p/", kw.get("id"), pos, 0),
}
# Shortcodes whose output is a path the site resolves (used inside link targets).
REF_SHORTCODES = frozenset({"ref", "relref"})
# Raw-HTML shortcodes of themes: their inner HTML is kept as it is (then sanitised).
RAW_SHORTCODES = frozenset({"raw", "rawhtml", "html"})
# Liquid tags whose inner text never reaches the page.
_LIQUID_DROPPED = frozenset({"comment", "capture"})
# Liquid tags that output a path (`{% post_url 2010-07-21-name %}`, `{% link a.md %}`).
_LIQUID_PATHS = frozenset({"post_url", "link"})

# HTML element names: a tag in a shortcode's inner text that is none of these
# (`<uses-permission>`, `<manifest>`, `<dependency>`) means the text is code.
_HTML_ELEMENTS = frozenset(
    re.findall(
        r"\S+",
        "a abbr address article aside audio b bdi bdo blockquote br button canvas caption cite "
        "code col colgroup data dd del details dfn dialog div dl dt em embed fieldset figcaption "
        "figure footer form h1 h2 h3 h4 h5 h6 header hr i iframe img input ins kbd label legend "
        "li main mark menu meter nav noscript object ol optgroup option output p picture pre "
        "progress q rp rt ruby s samp script section select small source span strong style sub "
        "summary sup table tbody td template textarea tfoot th thead time tr track u ul var "
        "video wbr center font big tt strike",
    )
)
_INNER_TAG = re.compile(r"</?([A-Za-z][\w:.-]{0,60})")

# Characters a tag's arguments may span. Arguments never contain a brace, so
# a search from an opener stops at the next brace: the scan stays linear.
_MAX_TAG = 2000
# One alternation for everything the scanner stops at; each branch is bounded.
_HUGO_ESCAPED = r"\{\{([<%])/\*([^{}]{0,LIMIT}?)\*/([>%])\}\}".replace("LIMIT", str(_MAX_TAG))
_HUGO = r"\{\{([<%])\s*(/?)\s*([A-Za-z_][\w.-]{0,80})([^{}]{0,LIMIT}?)\s*(/?)\s*([>%])\}\}".replace(
    "LIMIT", str(_MAX_TAG)
)
_LIQUID_TAG = r"\{%-?\s*([A-Za-z_]\w{0,80})([^{}]{0,LIMIT}?)-?%\}".replace("LIMIT", str(_MAX_TAG))
_LIQUID_OUT = r"\{\{-?\s*([A-Za-z_][^{}\n]{0,500}?)\s*-?\}\}"
_TEMPLATE = re.compile(
    f"(?P<esc>{_HUGO_ESCAPED})|(?P<hugo>{_HUGO})|(?P<ltag>{_LIQUID_TAG})|(?P<lout>{_LIQUID_OUT})",
    re.S,
)
# Markdown code: a fence line, or a run of backticks (a code span's opener).
_MD_CODE = re.compile(r"^( {0,3})(`{3,}|~{3,})[^\n]*$|`+", re.M)
_HTML_CODE = re.compile(r"<(pre|code|script|style|textarea)\b[^<>]{0,2000}>", re.I)
_ARG = re.compile(
    r"""([\w-]+)\s*=\s*("(?:[^"\\]|\\.)*"|`[^`]*`|'[^']*'|\S+)|("(?:[^"\\]|\\.)*"|`[^`]*`|\S+)"""
)
_LANGUAGE_NAME = re.compile(r"[A-Za-z0-9_+#.-]{1,40}")
_ESCAPED_IN_CODE = re.compile(_HUGO_ESCAPED, re.S)
_RAW_MARKER = re.compile(r"\{%-?\s*(?:raw|endraw)\s*-?%\}")


def _url(prefix: str, value: str | None, pos: list[str], index: int) -> str | None:
    found = value or (pos[index] if len(pos) > index else None)
    return prefix + _safe_part(found) if found else None


def _safe_part(value: str) -> str:
    return re.sub(r"[^\w.-]", "", value)


@dataclass(slots=True)
class Expanded:
    """A body with its template tags replaced; HTML fragments held by number."""

    source: str
    fragments: list[tuple[str, str]] = field(default_factory=list)  # (html, text)

    def restore(self, rendered: str) -> str:
        """Put the HTML fragments into ``rendered`` (the body after Markdown)."""
        if not self.fragments:
            return rendered
        pick = self._fragment(0)
        rendered = _BLOCK_PLACEHOLDER.sub(pick, rendered)
        return _PLACEHOLDER.sub(pick, rendered)

    def restore_text(self, text: str) -> str:
        """Put the fragments' plain text into ``text`` (a title lifted from the body)."""
        return _PLACEHOLDER.sub(self._fragment(1), text) if self.fragments else text

    def _fragment(self, which: int) -> Callable[[re.Match[str]], str]:
        def pick(match: re.Match[str]) -> str:
            index = int(match.group(1))
            return self.fragments[index][which] if index < len(self.fragments) else ""

        return pick


def _args(text: str) -> tuple[list[str], dict[str, str]]:
    positional: list[str] = []
    named: dict[str, str] = {}
    for match in _ARG.finditer(text):
        if match.group(1):
            named[match.group(1).lower()] = _unquote(match.group(2))
        else:
            positional.append(_unquote(match.group(3)))
    return positional, named


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'`":
        inner = value[1:-1]
        return inner if value[0] != '"' else re.sub(r"\\(.)", r"\1", inner)
    return value


def _language(value: str | None) -> str | None:
    if not value:
        return None
    value = value.strip().lower()
    return value if _LANGUAGE_NAME.fullmatch(value) else None


def _code_language(name: str, positional: list[str], named: dict[str, str]) -> str | None:
    for key in _LANGUAGE_PARAMS:
        found = _language(named.get(key))
        if found:
            return found
    if name in ("highlight", "prism", "syntax") and positional:
        return _language(positional[0].split(",")[0])
    for key in _FILE_PARAMS:
        file_name = named.get(key, "")
        if "." in file_name:
            return _language(file_name.rsplit(".", 1)[1])
    if name == "code-toggle":
        return "toml"  # the Hugo docs write code-toggle examples in TOML
    return None


def code_block(code: str, language: str | None) -> str:
    """``<pre><code class="language-…">`` with ``code`` escaped, first/last newline trimmed."""
    code = code.removeprefix("\n").removesuffix("\n")
    attribute = f' class="language-{language}"' if language else ""
    return f"<pre><code{attribute}>{html.escape(code, quote=False)}\n</code></pre>"


def _is_code_inner(inner: str) -> bool:
    """Text that is not Markdown: it holds tags that are not HTML elements."""
    return any(m.group(1).lower() not in _HTML_ELEMENTS for m in _INNER_TAG.finditer(inner))


def _attribute(value: str) -> str:
    return html.escape(value, quote=True)


def _image(positional: list[str], named: dict[str, str]) -> str | None:
    src = named.get("src") or (positional[0] if positional else "")
    if not src:
        return None
    alt = named.get("alt") or named.get("title") or named.get("caption") or ""
    image = f'<img src="{_attribute(src)}" alt="{_attribute(alt)}">'
    link = named.get("link")
    if link:
        image = f'<a href="{_attribute(link)}">{image}</a>'
    caption = named.get("caption") or named.get("title")
    if caption:
        return f"<figure>{image}<figcaption>{html.escape(caption)}</figcaption></figure>"
    return f"<figure>{image}</figure>"


class _Scanner:
    """One pass over a body; ``markdown`` says which kind of code to leave alone."""

    def __init__(self, text: str, *, markdown: bool, plain: bool = False) -> None:
        self.text = _without_marks(text)
        self.markdown = markdown
        self.plain = plain  # titles and excerpts: text only, no HTML fragments
        self.out: list[str] = []
        self.expanded = Expanded("")
        self._no_closer: dict[str, int] = {}  # closer pattern -> position from which none exists

    # -- output --------------------------------------------------------------

    def emit_html(self, fragment: str, text: str) -> None:
        if self.plain:
            self.out.append(text)
        elif self.markdown:
            self.out.append(f"{_OPEN_MARK}{len(self.expanded.fragments)}{_CLOSE_MARK}")
            self.expanded.fragments.append((fragment, text))
        else:
            self.out.append(fragment)

    def emit_literal(self, text: str) -> None:
        """Text shown as written (an escaped shortcode): never parsed as markup."""
        self.emit_html(html.escape(text, quote=False), text)

    # -- searching -----------------------------------------------------------

    def find(self, pattern: str, start: int) -> re.Match[str] | None:
        """The next match of ``pattern`` from ``start``; a miss is remembered."""
        if self._no_closer.get(pattern, len(self.text) + 1) <= start:
            return None
        found = re.compile(pattern, re.S | re.I | re.M).search(self.text, start)
        if found is None:
            self._no_closer[pattern] = start
        return found

    # -- the scan ------------------------------------------------------------

    def run(self) -> Expanded:
        text, pos = self.text, 0
        code = _MD_CODE if self.markdown else _HTML_CODE
        # The next tag and the next code region, each searched again only once
        # the scan has passed it: searching both from every position would
        # make a body with one far-away code block quadratic.
        tag: re.Match[str] | None = None
        region: re.Match[str] | None = None
        no_tag, no_region = False, self.plain
        while pos < len(text):
            if not no_tag and (tag is None or tag.start() < pos):
                tag = _TEMPLATE.search(text, pos)
                no_tag = tag is None
            if not no_region and (region is None or region.start() < pos):
                region = code.search(text, pos)
                no_region = region is None
            if region is not None and not no_region and (no_tag or region.start() < tag.start()):  # type: ignore[union-attr]
                self.out.append(text[pos : region.start()])
                pos = self.code_region(region)
                continue
            if no_tag or tag is None:
                break
            self.out.append(text[pos : tag.start()])
            pos = self.template(tag)
        self.out.append(text[pos:])
        self.expanded.source = "".join(self.out)
        return self.expanded

    def code_region(self, opener: re.Match[str]) -> int:
        """Copy code the body already has, unescaping only escaped shortcodes."""
        text, start = self.text, opener.start()
        if self.markdown and opener.group(2):  # a fence: up to its closing fence line
            fence = opener.group(2)
            closer = self.find(
                rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$", opener.end()
            )
            end = closer.end() if closer else len(text)
        elif self.markdown:  # a code span: up to the same run of backticks
            run = opener.group(0)
            closer = self.find(rf"(?<!`){run}(?!`)", opener.end())
            if closer is None:
                self.out.append(run)
                return opener.end()
            end = closer.end()
        else:
            closer = self.find(rf"</{opener.group(1)}\s*>", opener.end())
            end = closer.end() if closer else len(text)
        self.out.append(self.unescape_in_code(text[start:end]))
        return end

    def unescape_in_code(self, code: str) -> str:
        code = _RAW_MARKER.sub("", code)

        def literal(match: re.Match[str]) -> str:
            shown = f"{{{{{match.group(1)}{match.group(2)}{match.group(3)}}}}}"
            return shown if self.markdown else html.escape(shown, quote=False)

        return _ESCAPED_IN_CODE.sub(literal, code)

    def template(self, tag: re.Match[str]) -> int:
        if tag.group("esc"):
            self.emit_literal(f"{{{{{tag.group(2)}{tag.group(3)}{tag.group(4)}}}}}")
            return tag.end()
        if tag.group("hugo"):
            return self.hugo(tag)
        if tag.group("ltag"):
            return self.liquid(tag)
        return tag.end()  # `{{ site.x }}`: a value feedsvc does not have

    def hugo(self, tag: re.Match[str]) -> int:
        closing, name, rest = tag.group(7), tag.group(8).lower(), tag.group(9)
        self_closing = bool(tag.group(10))
        if closing:
            return tag.end()  # a closing tag alone (its opener was unwrapped): removed
        positional, named = _args(rest)
        if name in IMAGE_SHORTCODES:
            image = _image(positional, named)
            if image is not None:
                self.emit_html(image, named.get("caption") or named.get("alt") or "")
            return tag.end()
        if name in _EMBED_URLS:
            url = _EMBED_URLS[name](positional, named)
            if url is not None:
                self.emit_html(f'<a href="{_attribute(url)}">{html.escape(url)}</a>', url)
            return tag.end()
        if name in REF_SHORTCODES:
            self.out.append(positional[0] if positional else named.get("path", ""))
            return tag.end()
        if self_closing:
            return tag.end()  # `{{< name />}}` has no inner text: removed
        closer = self.find(r"\{\{[<%]\s*/\s*" + re.escape(name) + r"\s*[>%]\}\}", tag.end())
        if closer is None:
            return tag.end()  # unpaired and unknown: removed
        inner = self.text[tag.end() : closer.start()]
        if name in RAW_SHORTCODES:
            self.emit_html(inner, inner)
            return closer.end()
        language = _code_language(name, positional, named)
        is_code = name in CODE_SHORTCODES or language is not None
        if is_code or (tag.group(6) == "<" and _is_code_inner(inner)):
            self.emit_html(code_block(inner, language), inner.strip("\n"))
            return closer.end()
        return tag.end()  # unknown: the tags go, the inner text stays (and is scanned)

    def liquid(self, tag: re.Match[str]) -> int:
        name, rest = tag.group(13).lower(), tag.group(14)
        if name in ("raw", "highlight", *_LIQUID_DROPPED):
            closer = self.find(r"\{%-?\s*end" + name + r"\s*-?%\}", tag.end())
            if closer is None:
                return tag.end()
            inner = self.text[tag.end() : closer.start()]
            if name == "raw":
                self.out.append(inner)  # copied, never scanned: raw means literal
            elif name == "highlight":
                words = rest.split()
                language = _language(words[0]) if words else None
                self.emit_html(code_block(inner, language), inner.strip("\n"))
            return closer.end()
        if name in _LIQUID_PATHS:
            words = rest.split()
            if words:
                self.out.append(words[0].strip("\"'"))
        return tag.end()  # every other tag (if, for, include, assign...) is removed


def _without_marks(text: str) -> str:
    """``text`` without the private-use characters that hold fragments' places."""
    return text.replace(_OPEN_MARK, "").replace(_CLOSE_MARK, "")


def expand(text: str, *, markdown: bool) -> Expanded:
    """``text`` with every template tag handled.

    ``markdown``: the result is Markdown source with placeholders (render it,
    then ``restore``); otherwise the result is HTML with fragments in place.
    """
    if "{{" not in text and "{%" not in text:
        # No tag, and no escaped shortcode or raw marker in code either (each
        # starts with one of these): the scan would copy the text as it is.
        # Its two searches per body were half of parsing a news article.
        return Expanded(_without_marks(text))
    return _Scanner(text, markdown=markdown).run()


def plain(text: str) -> str:
    """A one-line field (title, excerpt) without template tags; code kept as its text."""
    if "{{" not in text and "{%" not in text:
        return text
    return _Scanner(text, markdown=False, plain=True).run().source
