"""Recognising HTML bodies and lifting their title; owns no sanitising.

Only *locates* things (the first heading or ``<title>``, the ``<body>``) by
source offset: the HTML itself is returned as written, for normalise to
sanitise (bs4 and nh3 live there). A small linear scanner is used instead of
``html.parser``: the stdlib parser is quadratic on unclosed constructs
(100,000 ``<!--`` took two minutes), and every regex here is bounded so
that no input of the 2 MB cap can make it backtrack for long.
"""

from __future__ import annotations

import html
import re

from feedsvc.text import collapse_whitespace

# A body "is HTML" when it starts with a tag, comment or doctype...
_STARTS_WITH_TAG = re.compile(r"\A\s*<(?:[A-Za-z][A-Za-z0-9-]*[\s/>]|!--|!doctype)", re.I)
# ...or is a whole document, or has block-level tags at the start of a line.
_DOCUMENT = re.compile(r"<(?:html|body)[\s>]", re.I)
_BLOCK_TAG = re.compile(
    r"^[ \t]*<(?:p|div|h[1-6]|table|ul|ol|blockquote|article|section|figure|pre)[\s>]",
    re.I | re.M,
)

# A comment opener or a start/end tag. `[^<>]*` (not `[^>]*`) keeps the scan
# linear when `>` never comes.
_TOKEN = re.compile(r"<!--|<(/?)([A-Za-z][A-Za-z0-9]*)(?=[\s/>])[^<>]*>")
_TAG = re.compile(r"<[^<>]*>")
_TITLE_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "title"})
# Elements whose content is not markup: a heading-like text in a script is not a title.
_RAW_TEXT = frozenset({"script", "style", "textarea"})
_CLOSE = {name: re.compile(rf"</{name}\s*>", re.I) for name in (*_TITLE_TAGS, *_RAW_TEXT)}


def starts_with_tag(text: str) -> bool:
    return _STARTS_WITH_TAG.match(text) is not None


def looks_like_html(text: str) -> bool:
    return bool(starts_with_tag(text) or _DOCUMENT.search(text) or _BLOCK_TAG.search(text))


def _element_text(fragment: str) -> str:
    return collapse_whitespace(html.unescape(_TAG.sub(" ", fragment)))


def _next_tag(source: str, pos: int) -> re.Match[str] | None:
    """The next start or end tag from ``pos``, comments skipped; None at the end
    of the text or at an unclosed comment (everything after it is comment)."""
    while match := _TOKEN.search(source, pos):
        if match.group(0) != "<!--":
            return match
        end = source.find("-->", match.end())
        if end < 0:
            return None
        pos = end + 3
    return None


def split_title(source: str) -> tuple[str | None, str]:
    """The first heading (or ``<title>``) text and the HTML body without it.

    A full document is reduced to the inside of its ``<body>``. A heading is
    cut from the body so the title is not shown twice; a ``<title>`` lives in
    ``<head>`` and goes with it. Headings without text are passed over.
    Without a title: ``(None, body)``.
    """
    title: str | None = None
    title_span = (0, 0)
    body_start, body_end = 0, len(source)
    seen_body = False
    unclosed: set[str] = set()  # names never closed from some point on
    pos = 0
    while match := _next_tag(source, pos):
        pos = match.end()
        closing, name = match.group(1), match.group(2).lower()
        if name == "body":
            if not closing and not seen_body:
                body_start, seen_body = match.end(), True
            elif closing and seen_body:
                body_end = match.start()
                break
        elif closing or name in unclosed:
            continue
        elif name in _RAW_TEXT:
            close = _CLOSE[name].search(source, pos)
            if close is None:
                break
            pos = close.end()
        elif name in _TITLE_TAGS and title is None:
            close = _CLOSE[name].search(source, pos)
            if close is None:
                unclosed.add(name)
                continue
            text = _element_text(source[match.end() : close.start()])
            pos = close.end()
            if text:
                title, title_span = text, (match.start(), close.end())
    if title is None:
        return None, source[body_start:body_end]
    start, end = title_span
    if body_start <= start and end <= body_end:
        return title, source[body_start:start] + source[end:body_end]
    return title, source[body_start:body_end]
