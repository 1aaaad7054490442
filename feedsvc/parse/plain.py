"""Files without front matter or transcript header (docs/content-formats.md); owns their title rule.

HTML, Markdown or plain text, told apart by the text itself:

- HTML (starts with a tag, is a whole document, or has block tags at line
  starts): title = first ``<h1>``..``<h6>``/``<title>`` text, cut from the body;
- Markdown (a ``.md`` file, or a heading, fenced code, a link, strong
  emphasis; ``parse.bodies`` decides): title = first
  top-level heading, cut from the body; the rest rendered;
- anything else is text: title = first non-empty line (cut from the body
  when it stands alone, i.e. is followed by a blank line or the end), the
  rest as ``<p>`` paragraphs split on blank lines.

HTML and Markdown without a heading get ``title=None``: normalise then falls
back to the first line or the file name (docs/item-fields.md, title).
"""

from __future__ import annotations

import html
import re

from feedsvc.parse import bodies, htmldoc, markdown, templates
from feedsvc.text import collapse_whitespace
from feedsvc.types import RawDocument

_BLANK_LINES = re.compile(r"\n[ \t]*\n\s*")


def text_paragraphs_html(text: str) -> str:
    """Plain text -> ``<p>`` per blank-line separated paragraph, escaped.

    Line breaks inside a paragraph are kept as ``\\n`` (HTML shows a space,
    ``content_text`` keeps the line).
    """
    paragraphs = [p.strip() for p in _BLANK_LINES.split(text)]
    return "\n".join(
        "<p>" + "\n".join(html.escape(line.strip(), quote=False) for line in p.split("\n")) + "</p>"
        for p in paragraphs
        if p
    )


def _split_text_title(text: str) -> tuple[str, str]:
    lines = text.strip("\n").split("\n")
    # The first non-empty line: leading blank lines were stripped, but a line
    # of spaces may remain.
    while lines and not lines[0].strip():
        lines.pop(0)
    title = collapse_whitespace(lines[0])
    stands_alone = len(lines) == 1 or not lines[1].strip()
    rest = lines[1:] if stands_alone else lines
    return title, "\n".join(rest)


def parse_plain(path: str, text: str) -> RawDocument:
    """A plain HTML, Markdown or text file -> RawDocument (no ``meta``)."""
    declared = bodies.declared_format(path)
    if declared == "html" or (declared is None and htmldoc.looks_like_html(text)):
        title, body = htmldoc.split_title(text)
        html_body = bodies.render(body.strip(), "html")
        title = templates.plain(title) if title is not None else None
        return RawDocument(path, html_body, title=title)
    if declared == "markdown" or markdown.looks_like_markdown(text):
        title, body = markdown.split_title(text)
        return RawDocument(path, body, title=title)
    title, rest = _split_text_title(text)
    return RawDocument(path, text_paragraphs_html(rest), title=title)
