"""Body HTML: size and nesting caps, nh3 sanitising, text and first heading/paragraph/image.

The only user of nh3 in feedsvc, and of an HTML tree in normalise (STYLE
layout). Owns what HTML may reach a feed (docs/item-fields.md, content_html); not where
the body came from (parse/) nor how it is serialised (render/).

The sanitised HTML is read with lxml (libxml2) rather than BeautifulSoup: the same
extraction from a bs4 tree (lxml parser) costs 2.1x as much, 42% of parsing and
normalising a file of the bench corpus (bench/html_parsers.py), and the input is
nh3's well-formed output, so bs4's leniency buys nothing. ``BlockWriter`` does
the bookkeeping of the walk whatever the tree, which is what that bench relies on.

Why nh3: bs4 keeps `<script>`, `on*` and `javascript:`; bleach is deprecated
and leaves script text behind; nh3 removed every vector tried (README, "Why these libraries").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Set
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

import lxml.etree  # type: ignore[import-untyped]  # no stubs; lxml-stubs is not a dependency
import nh3

from feedsvc.normalise.references import SRCSET_ATTRIBUTES, References
from feedsvc.normalise.urls import absolute_http_url
from feedsvc.text import collapse_whitespace, xml_safe

# Measured: sanitisers are quadratic on nesting (nh3: 5 s for 40,000
# nested <div>s). Deeper elements are unwrapped (their text kept) before nh3.
MAX_DEPTH = 200
# A feed entry of more than a million characters of HTML helps nobody; the
# cap bounds nh3 (about 0.25 s per MB of flat HTML) and lxml time.
MAX_HTML_CHARS = 1_000_000

ALLOWED_TAGS = frozenset(
    {
        *("p", "br", "hr", "div", "span", "h1", "h2", "h3", "h4", "h5", "h6"),
        *("ul", "ol", "li", "dl", "dt", "dd", "blockquote", "cite", "footer"),
        *("figure", "figcaption", "pre", "code", "kbd", "samp", "var"),
        *("em", "strong", "b", "i", "u", "s", "del", "ins", "mark", "small"),
        *("sub", "sup", "q", "abbr", "time", "a", "img"),
        *("picture", "source", "video", "audio", "track"),
        *("table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"),
        "section",  # footnotes
    }
)
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"lang", "dir"},
    "img": {"src", "srcset", "sizes", "alt", "title", "width", "height"},
    "source": {"src", "srcset", "sizes", "type", "media"},
    "video": {"src", "poster", "controls", "width", "height", "loop", "muted", "preload"},
    "audio": {"src", "controls", "loop", "muted", "preload"},
    "track": {"src", "kind", "srclang", "label", "default"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "abbr": {"title"},
    "time": {"datetime"},
    "ol": {"start", "reversed"},
    # Classes and ids that carry meaning, filtered by value in _attribute_filter.
    **{name: {"class"} for name in ("code", "pre", "div", "p", "span", "ul", "li", "section")},
    **{name: {"id"} for name in ("h1", "h2", "h3", "h4", "h5", "h6", "li")},
    "sup": {"class", "id"},
    "a": {"href", "title", "hreflang", "class", "id"},
}
# Class values kept: a fence's language (`language-go`), math, GitHub alerts,
# footnotes and task lists, as markdown-it and its plugins write them. Every
# other class is dropped (it would only style the item on our site).
_KEPT_CLASS = re.compile(
    r"language-[A-Za-z0-9_+#.-]{1,40}|math|inline|block|markdown-alert(?:-[a-z]{1,20})?"
    r"|markdown-alert-title|footnotes?(?:-[a-z]{1,10})?|footnote-(?:ref|item|backref)"
    r"|(?:contains-)?task-list(?:-item)?"
)
_ID = re.compile(r"[A-Za-z][\w:.-]{0,80}")
# Removed with their content: their text is code, not prose.
CONTENT_DROPPED_TAGS = frozenset(
    {"script", "style", "iframe", "object", "embed", "template", "svg", "math"}
    | {"title", "textarea", "select", "noembed", "noframes", "xmp"}
)
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})

_BLOCK_TAGS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "dl", "dt", "dd"}
    | {"blockquote", "footer", "figure", "figcaption", "pre", "hr", "table", "caption"}
    | {"thead", "tbody", "tfoot", "tr", "body", "html", "section"}
)
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"}
    | {"param", "source", "track", "wbr", "keygen"}
)
# Implied end tags (HTML §13.2.6.4.7, simplified): opening the key closes an
# open element named in the first set, looking down the stack no further than
# an element of the second set. A second <li> closes the first; <div> closes <p>.
_P_SCOPE = frozenset({"table", "td", "th", "caption", "button", "object", "template"})
_CLOSES_P = frozenset(
    {"address", "article", "aside", "blockquote", "details", "div", "dl", "fieldset"}
    | {"figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6"}
    | {"header", "hr", "main", "menu", "nav", "ol", "pre", "section", "table", "ul"}
)
_IMPLIED_END: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "p": (frozenset({"p"}), _P_SCOPE),
    "li": (frozenset({"li"}), frozenset({"ul", "ol", "table"})),
    "dt": (frozenset({"dt", "dd"}), frozenset({"dl", "table"})),
    "dd": (frozenset({"dt", "dd"}), frozenset({"dl", "table"})),
    "tr": (frozenset({"tr", "td", "th"}), frozenset({"table", "tbody", "thead", "tfoot"})),
    "td": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "th": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "option": (frozenset({"option"}), frozenset({"select"})),
    **{name: (frozenset({"p"}), _P_SCOPE) for name in _CLOSES_P},
}
# A comment runs to "-->" or, unclosed, to the end (so the scan stays linear).
_TAG = re.compile(r"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][^\s/>]*)[^>]*>", re.S)
_LINE_BREAK = "\x00"  # marks <br> while extracting text; xml_safe removed any real NUL


def limit_size(html: str) -> str:
    """At most MAX_HTML_CHARS, cut before a tag so no half tag is left."""
    if len(html) <= MAX_HTML_CHARS:
        return html
    cut = html.rfind("<", 0, MAX_HTML_CHARS)
    return html[: cut if cut > 0 else MAX_HTML_CHARS]


def limit_nesting(html: str, max_depth: int = MAX_DEPTH) -> str:
    """Unwrap elements nested deeper than ``max_depth``; their text stays.

    A linear scan with an approximate open-element stack: void elements do not
    nest, a repeated <p>/<li>/<td>... closes its sibling, an end tag closes up
    to its opener. ``<div/>`` counts as open, as an HTML parser treats it.
    Returns ``html`` unchanged when nothing is deeper than the cap. nh3 still
    sanitises the result, so an estimate that is off can only cost layout.
    """
    if html.count("<") <= max_depth:
        return html  # too few tags to nest that deep
    elements = _OpenElements(max_depth)
    pieces: list[str] = []
    last = 0
    for match in _TAG.finditer(html):
        raw_name = match.group(2)
        if raw_name is None or not elements.drops(bool(match.group(1)), raw_name.lower()):
            continue  # a comment, or a tag that stays
        pieces.append(html[last : match.start()])
        last = match.end()
    if not pieces:
        return html
    pieces.append(html[last:])
    return "".join(pieces)


class _OpenElements:
    """``limit_nesting``'s approximate open-element stack; decides which tags go."""

    def __init__(self, max_depth: int) -> None:
        self._max_depth = max_depth
        self._stack: list[str] = []
        self._open_counts: Counter[str] = Counter()
        self._dropped: Counter[str] = Counter()  # start tags dropped, awaiting their end tag

    def drops(self, closing: bool, name: str) -> bool:
        """Whether the tag ``<name>`` (``</name>`` when ``closing``) is dropped."""
        if closing:
            return self._closes(name)
        if name in _VOID_TAGS:
            return False
        if name in _IMPLIED_END:
            _close_implied(self._stack, self._open_counts, *_IMPLIED_END[name])
        if len(self._stack) >= self._max_depth:
            self._dropped[name] += 1
            return True
        self._stack.append(name)
        self._open_counts[name] += 1
        return False

    def _closes(self, name: str) -> bool:
        if self._dropped[name]:
            self._dropped[name] -= 1
            return True
        if self._open_counts[name]:
            while self._stack:
                top = self._stack.pop()
                self._open_counts[top] -= 1
                if top == name:
                    break
        return False


def _close_implied(
    stack: list[str], open_counts: Counter[str], closes: frozenset[str], scope: frozenset[str]
) -> None:
    """Pop up to and including the nearest element in ``closes`` above any ``scope`` element."""
    if not any(open_counts[name] for name in closes):
        return  # the common case, without walking the stack
    for index in range(len(stack) - 1, -1, -1):
        if stack[index] in scope:
            return
        if stack[index] in closes:
            for name in stack[index:]:
                open_counts[name] -= 1
            del stack[index:]
            return


def sanitise(body_html: str, item_url: str, refs: References | None = None) -> str:
    """Safe HTML for feeds: allow-listed tags, attributes and URL schemes, relative
    URLs made absolute by ``refs`` (the document's own folder, references.py) or,
    without it, against ``item_url``; XML-illegal characters removed.

    ``xml_safe`` runs before nh3 too: a lone surrogate cannot even cross into
    nh3 (it raises UnicodeEncodeError); and last, because nh3 keeps what
    ``&#x0b;`` or ``&#xFFFE;`` decode to (BeautifulSoup does; nh3 keeps them).
    """
    html = limit_nesting(limit_size(xml_safe(body_html)))
    document = _document.set(_Document(item_url, refs))
    try:
        cleaned = _cleaner().clean(html)
    finally:
        _document.reset(document)
    return xml_safe(cleaned)


@dataclass(frozen=True, slots=True)
class _Document:
    """Where the relative URLs of the body being sanitised resolve."""

    item_url: str
    refs: References | None

    def absolutise(self, url: str) -> str | None:
        refs = self.refs
        return refs.resolve(url) if refs is not None else absolute_http_url(url, self.item_url)

    def srcset(self, value: str) -> str | None:
        return self.refs.resolve_srcset(value) if self.refs is not None else None


# The body ``sanitise`` is cleaning, for the one Cleaner's URL callbacks. A
# context variable, so threads that sanitise at once each see their own.
_document: ContextVar[_Document] = ContextVar("feedsvc_sanitised_document")


@lru_cache(maxsize=1)
def _cleaner() -> nh3.Cleaner:
    """One nh3 Cleaner per process, built on first use.

    ``nh3.clean`` converted every allow-list from Python to Rust on each call:
    0.03 ms of a 0.05 ms clean of a news article (bench/README.md). A Cleaner
    is safe to share between threads; its callbacks read ``_document``.
    """
    return nh3.Cleaner(
        attribute_filter=_filter_attribute,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(CONTENT_DROPPED_TAGS),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(ALLOWED_SCHEMES),
        url_relative=_absolutise,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def _absolutise(url: str) -> str | None:
    return _document.get().absolutise(url)


def _filter_attribute(element: str, attribute: str, value: str) -> str | None:
    # nh3 resolves src/href/poster itself (url_relative); a srcset holds several URLs.
    if attribute in SRCSET_ATTRIBUTES:
        return _document.get().srcset(value)
    return _attribute_filter(element, attribute, value)


def _attribute_filter(_element: str, attribute: str, value: str) -> str | None:
    """Keep only meaningful classes and plain ids."""
    if attribute == "class":
        kept = [name for name in value.split() if _KEPT_CLASS.fullmatch(name)]
        return " ".join(kept) or None
    if attribute == "id":
        return value if _ID.fullmatch(value) else None
    return value


@dataclass(frozen=True, slots=True)
class BodyFacts:
    """What the sanitised body says: its text and the first heading/paragraph/image.

    ``text`` is all of it (code and math included: it is for search and JSON
    Feed ``content_text``); ``prose`` only the words people wrote about it:
    no code block or inline code, no math, no table, no footnotes, no URL
    (what language detection reads). ``first_paragraph`` is the first
    paragraph with prose in it, math left out (docs/item-fields.md, summary).
    """

    text: str
    first_heading: str | None
    first_paragraph: str | None
    first_image: str | None
    prose: str = ""


@dataclass(slots=True)
class _Block:
    owner: str  # the innermost block element
    text: str  # everything
    summary: str  # without math
    prose: str  # without math, code, URLs
    in_prose: bool  # not inside a table, the footnotes or an alert's title


# Elements whose text is never prose, by tag and class (sanitised HTML keeps
# only the classes ``_KEPT_CLASS`` allows, so these are markdown-it's).
_NOT_PROSE_CONTAINERS = frozenset({"table", "figcaption"})
# URLs and e-mail addresses; bounded on the left of "@" so a long run without
# spaces cannot make the search quadratic.
_URL_TEXT = re.compile(r"\b(?:https?|ftp)://\S+|\bwww\.\S+|[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+")
_WORD = re.compile(r"[^\W\d_]{2,}")
# Elements open and close; comments and processing instructions come once.
_WALK_EVENTS = ("start", "end", "comment", "pi")


# libxml2's HTML parser with lxml's plain elements: lxml.html's fragment
# helpers and element classes cost a Python call per element (bench/README.md).
# A body is parsed as the only child of a <div> in a document's <body>.
# lxml parsers may be shared between threads (each parse holds the parser's lock).
_PARSER = lxml.etree.HTMLParser()


def extract(clean_html: str) -> BodyFacts:
    """Read sanitised HTML (the output of ``sanitise``) into plain facts."""
    if not clean_html.strip():
        return BodyFacts(text="", first_heading=None, first_paragraph=None, first_image=None)
    root = body_tree(clean_html)
    return facts(_blocks(root), (img.get("src") for img in root.iter("img")))


def body_tree(clean_html: str) -> lxml.etree._Element:
    """The tree of a sanitised body: a <div> holding it."""
    document = lxml.etree.fromstring(f"<html><body><div>{clean_html}</div></body></html>", _PARSER)
    return document.find("body")[0]


def facts(blocks: list[_Block], image_sources: Iterable[str | None]) -> BodyFacts:
    """BodyFacts from the blocks of a body and the ``src`` of its images, in order."""
    heading = next((b.text for b in blocks if b.owner in _HEADINGS), None)
    candidates = [b for b in blocks if b.in_prose and _WORD.search(b.prose)]
    paragraph = next((b.summary for b in candidates if b.owner == "p"), None)
    if paragraph is None:
        paragraph = next((b.summary for b in candidates if b.owner not in _HEADINGS), None)
    image = None
    for src in image_sources:
        image = absolute_http_url(src) if src else None
        if image:
            break
    return BodyFacts(
        text=xml_safe("\n\n".join(b.text for b in blocks)),
        first_heading=collapse_whitespace(heading) if heading else None,
        first_paragraph=collapse_whitespace(paragraph) if paragraph else None,
        first_image=image,
        prose=xml_safe("\n\n".join(b.prose for b in blocks if b.in_prose and b.prose)),
    )


_NO_CLASSES: frozenset[str] = frozenset()
# Elements that change what the writer hides without a class (``_mark``): code
# and the not-prose containers. Every other mark (math, footnotes, alerts) is a class.
_MARKED = frozenset({"code", "kbd", "samp", "var"}) | _NOT_PROSE_CONTAINERS


def _classes(element: lxml.etree._Element) -> frozenset[str]:
    value = element.get("class")
    return frozenset(value.split()) if value else _NO_CLASSES


class BlockWriter:
    """Turns a walk over a body's tree into ``_Block``s; owns no tree.

    The walker calls ``open``/``close`` around each element (``name`` is ""
    for a comment), ``text`` for each run of text in document order,
    ``line_break`` for <br> and ``pre`` for a <pre> element's whole text, then
    ``flush`` once at the end and reads ``blocks``. One writer per body: its
    buffers hold the run being collected.
    """

    def __init__(self) -> None:
        self.blocks: list[_Block] = []
        # Three views of the same run: all text, text for a summary, prose.
        self._buffers: tuple[list[str], list[str], list[str]] = ([], [], [])
        self._owners = ["div"]
        self._math = 0  # open math elements: hidden from summary and prose
        self._code = 0  # open code elements: hidden from prose
        self._outside = 0  # open elements whose text is not prose at all

    def text(self, value: str) -> None:
        if not value:
            return
        self._buffers[0].append(value)
        if not self._math:
            self._buffers[1].append(value)
            if not self._code:
                self._buffers[2].append(value)

    def line_break(self) -> None:
        self.text(_LINE_BREAK)

    def pre(self, text: str) -> None:
        self.flush()
        if text.strip():
            self.blocks.append(_Block("pre", text, "", "", in_prose=False))

    def open(self, name: str, classes: Set[str]) -> None:
        if name in _BLOCK_TAGS:
            if self._buffers[0]:
                self.flush()
            self._owners.append(name)
        if classes or name in _MARKED:
            self._mark(name, classes, 1)
        if name in ("td", "th"):
            self.text(" ")

    def close(self, name: str, classes: Set[str]) -> None:
        if name in _BLOCK_TAGS:
            if self._buffers[0]:
                self.flush()
            self._owners.pop()
        if classes or name in _MARKED:
            self._mark(name, classes, -1)

    def flush(self) -> None:
        everything, no_math, no_code = self._buffers
        if not everything:
            return
        text = _joined(everything)
        if text:
            # A view that hid nothing holds the same strings as the wider one
            # (``text`` appends to each in turn): joined once, not three times.
            summary = text if len(no_math) == len(everything) else _joined(no_math)
            words = summary if len(no_code) == len(no_math) else _joined(no_code)
            self.blocks.append(
                _Block(self._owners[-1], text, summary, _prose(words), not self._outside)
            )
        for buffer in self._buffers:
            buffer.clear()

    def _mark(self, name: str, classes: Set[str], step: int) -> None:
        if not name:
            return
        self._math += step * ("math" in classes)
        self._code += step * (name in ("code", "kbd", "samp", "var"))
        self._outside += step * (
            name in _NOT_PROSE_CONTAINERS
            or (name == "section" and "footnotes" in classes)
            or "markdown-alert-title" in classes
        )


def _joined(buffer: list[str]) -> str:
    """The run's text: whitespace collapsed within each line, empty lines dropped."""
    joined = "".join(buffer)
    if _LINE_BREAK not in joined:
        return collapse_whitespace(joined)
    lines = (collapse_whitespace(line) for line in joined.split(_LINE_BREAK))
    return "\n".join(line for line in lines if line)


def _prose(joined: str) -> str:
    """``_joined`` text without URLs or e-mail addresses, on one line."""
    if "://" in joined or "www." in joined or "@" in joined:  # what _URL_TEXT needs
        return collapse_whitespace(_URL_TEXT.sub(" ", joined))
    # Each line is already collapsed and not empty: joining them with spaces
    # is what collapse_whitespace would make of the whole.
    return joined.replace("\n", " ")


def _blocks(root: lxml.etree._Element) -> list[_Block]:
    """A ``_Block`` for each run of text; <br> kept as a line break, other
    whitespace collapsed. lxml walks the tree (``iterwalk``, in C), so deep
    nesting never meets the recursion limit; a comment or processing
    instruction contributes only the text after it.
    """
    writer = BlockWriter()
    text, open_, close = writer.text, writer.open, writer.close  # bound once: the loop is hot
    walk = lxml.etree.iterwalk(root, events=_WALK_EVENTS)
    for event, element in walk:
        name = element.tag
        if event == "start":
            if name == "br":
                writer.line_break()
            elif name == "pre":
                writer.pre("".join(element.itertext()).strip("\n"))
                walk.skip_subtree()  # its text is taken whole; "end" still comes
            else:
                open_(name, _classes(element))
                value = element.text
                if value:
                    text(value)
            continue
        if event == "end" and name not in ("br", "pre"):
            close(name, _classes(element))
        value = element.tail  # after an element, a comment or an instruction
        if value:
            text(value)
    writer.flush()
    return writer.blocks
