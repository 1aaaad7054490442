"""Markdown -> HTML with markdown-it-py; owns Markdown only, never sanitising.

Raw HTML inside Markdown passes through untouched (docs/content-formats.md: "raw HTML inside
it passes through, then is sanitised" -- sanitising is normalise's job).
markdown-it's ``maxNesting`` (20 in the commonmark preset) bounds nesting, so
pathological input (50,000 nested ``>`` or ``[``) renders quickly and never
exhausts the recursion limit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.attrs.parse import ParseError
from mdit_py_plugins.attrs.parse import parse as parse_attributes
from mdit_py_plugins.deflist import deflist_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.gfm import gfm_plugin

from feedsvc.parse import templates
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


# `## Title {#id .class}` (Hugo, Pandoc, kramdown): attributes at the end of a heading.
_HEADING_ATTRS = re.compile(r"[ \t]*(\{[^{}\n]{1,200}\})[ \t]*\Z")


def _heading_attributes(state: StateCore) -> None:
    """Core rule: move a trailing ``{#id}`` of a heading onto the heading.

    mdit-py-plugins' ``attrs`` plugin reads attributes after inline elements
    and above blocks, not at the end of a heading; its parser does the reading.
    """
    tokens = state.tokens
    for index, token in enumerate(tokens[:-1]):
        if token.type != "heading_open":
            continue
        inline = tokens[index + 1]
        children = inline.children or []
        if not children or children[-1].type != "text":
            continue
        last = children[-1]
        match = _HEADING_ATTRS.search(last.content)
        if match is None:
            continue
        try:
            consumed, attributes = parse_attributes(match.group(1))
        except ParseError:
            continue
        if consumed != len(match.group(1)) - 1:  # the index of the closing brace
            continue
        last.content = last.content[: match.start()]
        inline.content = inline.content[: len(inline.content) - len(match.group(0))]
        if "id" in attributes:
            token.attrSet("id", attributes["id"])


# gfm_autolink's rules copy the rest of the paragraph on every call (for
# every ":" and "www."), which is quadratic in a long paragraph: 400 KB of
# "{{" took 10.7 s against 1.4 s without them, 100 KB of "a:" 192 s. Each runs only at its trigger
# character and sees at most this much text: longer URLs are not autolinked.
MAX_AUTOLINK_CHARS = 2048
_AUTOLINK_TRIGGERS = {
    "gfm_autolink_www": "w",
    "gfm_autolink_protocol": ":",
    "gfm_autolink_email": "@",
}
InlineRule = Callable[[StateInline, bool], bool]


# The protocol rule also runs a regex over all text pending before the ":".
_PROTOCOLS = ("http", "https", "mailto", "xmpp")
_PENDING_KEPT = 64


def _bounded(rule: InlineRule, trigger: str) -> InlineRule:
    def bounded(state: StateInline, silent: bool) -> bool:
        if state.src[state.pos] != trigger:
            return False
        if trigger == ":":
            if not state.pending.endswith(_PROTOCOLS):
                return False
            if len(state.pending) > _PENDING_KEPT:
                # Emit the older pending text as its own text token, so the
                # rule's regex sees a few characters, not the whole paragraph.
                kept = state.pending[-_PENDING_KEPT:]
                state.pending = state.pending[:-_PENDING_KEPT]
                state.pushPending()
                state.pending = kept
        limit = state.posMax
        state.posMax = min(limit, state.pos + MAX_AUTOLINK_CHARS)
        try:
            return rule(state, silent)
        finally:
            state.posMax = limit

    return bounded


def _bound_autolinks(md: MarkdownIt) -> None:
    found = 0
    for rule in md.inline.ruler.__rules__:
        trigger = _AUTOLINK_TRIGGERS.get(rule.name)
        if trigger is not None:
            rule.fn = _bounded(rule.fn, trigger)
            found += 1
    if found != len(_AUTOLINK_TRIGGERS):  # coupled to mdit-py-plugins' rule names
        raise RuntimeError("gfm_autolink rules renamed: see MAX_AUTOLINK_CHARS")
    md.inline.ruler.__compile__()


@functools.cache
def _parser() -> MarkdownIt:
    """CommonMark plus what authors of Hugo and Jekyll sites write.

    gfm_plugin: GFM tables, strikethrough, autolinks, task lists, footnotes
    and ``> [!NOTE]`` alerts; dollar math (``$x$``, ``$$…$$``) so that math is
    marked and summaries and language detection can leave it out, with
    ``allow_digits``/``allow_space`` off so prices like "$5 and $10" stay text;
    definition lists; ``{#id}`` heading attributes. ``html=True`` lets raw
    HTML through for the sanitiser to judge later.
    """
    md = MarkdownIt("commonmark", {"html": True})
    md.use(gfm_plugin)
    _bound_autolinks(md)
    md.use(dollarmath_plugin, allow_space=False, allow_digits=False, allow_labels=False)
    md.use(deflist_plugin)
    md.core.ruler.after("inline", "heading_attributes", _heading_attributes)
    return md


def looks_like_markdown(text: str) -> bool:
    return _MARKDOWN_SIGNS.search(text) is not None


# A task list's checkbox as markdown-it writes it. Feeds carry no form
# controls (the sanitiser drops <input>), so the box becomes a character.
_CHECKBOX = re.compile(r'<input class="task-list-item-checkbox"[^<>]{0,100}>')


def _checkbox(match: re.Match[str]) -> str:
    return "\u2611" if "checked" in match.group(0) else "\u2610"


def _finish(html: str, expanded: templates.Expanded) -> str:
    return expanded.restore(_CHECKBOX.sub(_checkbox, html))


def render_markdown(text: str) -> str:
    """Markdown source (template tags and all) -> HTML (not sanitised)."""
    expanded = templates.expand(text, markdown=True)
    return _finish(_parser().render(expanded.source), expanded)


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
    expanded = templates.expand(text, markdown=True)
    tokens = md.parse(expanded.source, env)  # parsed once: delimiter-heavy input costs ~7 µs a char
    for index, token in enumerate(tokens):
        # Top-level headings only: a heading inside a list or quote is not a title.
        if token.type != "heading_open" or token.level != 0:
            continue
        title = collapse_whitespace(expanded.restore_text(_inline_text(tokens[index + 1])))
        if not title:
            continue
        # heading_open, inline, heading_close
        rest = tokens[:index] + tokens[index + 3 :]
        html: str = md.renderer.render(rest, md.options, env)
        return title, _finish(html, expanded)
    html = md.renderer.render(tokens, md.options, env)
    return None, _finish(html, expanded)
