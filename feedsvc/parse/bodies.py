"""Which format a body is written in, and its HTML; owns that decision, not the formats.

docs/content-formats.md: "a Markdown body is rendered as Markdown whatever its first
character". The first source that says wins:

1. the front matter's ``markup`` or ``format`` key (Hugo's ``markup: md``,
   ``format: html``);
2. the file's extension: ``.md``, ``.markdown`` and friends are Markdown,
   ``.html``/``.htm`` HTML;
3. only for other files (the samples are ``.txt``) is the text sniffed: a
   front-matter body that starts with a tag is HTML, anything else Markdown.

A Markdown body starting with ``<kbd>``, ``<style>`` or ``<!--`` is therefore
still Markdown: its raw HTML passes through markdown-it to the sanitiser.
Template tags (``parse.templates``) are handled in both formats.
"""

from __future__ import annotations

from typing import Literal

from feedsvc.parse import htmldoc, markdown, templates
from feedsvc.types import pure_path

MARKDOWN_EXTENSIONS = frozenset(
    {".md", ".markdown", ".mdown", ".mkd", ".mkdn", ".mdwn", ".mdtxt", ".mdtext"}
)
HTML_EXTENSIONS = frozenset({".html", ".htm", ".xhtml"})
# Values of the front matter's `markup`/`format` key, by format.
_DECLARED = {
    **dict.fromkeys(("md", "markdown", "gfm", "commonmark", "goldmark", "mmark"), "markdown"),
    **dict.fromkeys(("html", "htm", "xhtml"), "html"),
}
FORMAT_KEYS = ("markup", "format")

Format = Literal["markdown", "html"]


def declared_format(path: str, meta_value: object = None) -> Format | None:
    """The format the front matter or the extension names, if either does."""
    if isinstance(meta_value, str):
        found = _DECLARED.get(meta_value.strip().lower())
        if found == "markdown":
            return "markdown"
        if found == "html":
            return "html"
    suffix = pure_path(path).suffix.lower()
    if suffix in MARKDOWN_EXTENSIONS:
        return "markdown"
    if suffix in HTML_EXTENSIONS:
        return "html"
    return None


def front_matter_format(path: str, meta_value: object, body: str) -> Format:
    """A front-matter body's format: declared, else HTML only when it starts with a tag."""
    declared = declared_format(path, meta_value)
    if declared is not None:
        return declared
    return "html" if htmldoc.starts_with_tag(body) else "markdown"


def render(body: str, body_format: Format) -> str:
    """The body as (unsanitised) HTML, template tags handled."""
    if not body:
        return ""
    if body_format == "markdown":
        return markdown.render_markdown(body)
    return templates.expand(body, markdown=False).source
