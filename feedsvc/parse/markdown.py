"""Markdown -> HTML with markdown-it-py; owns Markdown only, never sanitising.

Raw HTML inside Markdown passes through untouched (SPEC §1: "raw HTML inside
it passes through, then is sanitised" -- sanitising is normalise's job).
markdown-it's ``maxNesting`` (20 in the commonmark preset) bounds nesting, so
pathological input (50,000 nested ``>`` or ``[``) renders quickly and never
exhausts the recursion limit.
"""

from __future__ import annotations

import functools
import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

from feedsvc.text import collapse_whitespace

# Signals that plain text is Markdown: ATX or setext headings, fenced code,
# links/images, strong emphasis. Lists and single `*` are too common in plain
# prose to count on their own.
# Every pattern is bounded or anchored so a 2 MB line cannot make it backtrack
# quadratically (no `[^\n]*X[^\n]*` with a failing tail).
_MARKDOWN_SIGNS = re.compile(
    r"^ {0,3}#{1,6}[ \t]+\S"  # ATX heading
    r"|^[ \t]*\S[^\n]*\n {0,3}(?:=+|-{2,})[ \t]*$"  # setext heading
    r"|^ {0,3}(?:```|~~~)"  # fenced code
    r"|!?\[[^\[\]\n]{1,300}\]\([^()\s]{1,2000}\)"  # link or image
    r"|\*\*[^\s*][^\n*]{0,300}\*\*",  # strong emphasis
    re.MULTILINE,
)


@functools.cache
def _parser() -> MarkdownIt:
    # CommonMark plus GFM tables and strikethrough, which authors expect;
    # html=True lets raw HTML through for the sanitiser to judge later.
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def looks_like_markdown(text: str) -> bool:
    return _MARKDOWN_SIGNS.search(text) is not None


def render_markdown(text: str) -> str:
    """Markdown source -> HTML (not sanitised)."""
    html: str = _parser().render(text)
    return html


def _inline_text(token: Token) -> str:
    parts: list[str] = []
    for child in token.children or ():
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(_inline_text(child))
    return collapse_whitespace("".join(parts))


def split_title(text: str) -> tuple[str | None, str]:
    """The first heading's text (removed from the body) and the rest as HTML.

    Without a heading with text, the title is ``None`` and everything is body.
    """
    md = _parser()
    env: dict[str, object] = {}
    tokens = md.parse(text, env)  # parsed once: delimiter-heavy input costs ~7 µs a char
    for index, token in enumerate(tokens):
        # Top-level headings only: a heading inside a list or quote is not a title.
        if token.type != "heading_open" or token.level != 0:
            continue
        title = _inline_text(tokens[index + 1])
        if not title:
            continue
        # heading_open, inline, heading_close
        rest = tokens[:index] + tokens[index + 3 :]
        html: str = md.renderer.render(rest, md.options, env)
        return title, html
    html = md.renderer.render(tokens, md.options, env)
    return None, html
