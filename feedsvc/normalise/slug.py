"""Category names to ``Category(name, slug)``; owns slug rules, not where names come from.

SPEC §2 (categories): a slug is lowercase, runs of spaces and punctuation
become ``-``, Unicode letters are kept (``News Today`` -> ``news-today``,
``정치`` -> ``정치``). The slug is a path segment of ``/feeds/{lang}/{category}``
(SPEC §4), where ``all`` means "every category", so no item may own it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from feedsvc.text import collapse_whitespace, xml_safe
from feedsvc.types import Category

# SPEC §4: `all` is the grid's wildcard. A category really called "All" keeps
# its name but gets this slug, so `/feeds/ko/all.rss` stays "every category".
RESERVED_SLUGS = {"all": "category-all"}


def slugify(name: str) -> str:
    """Lowercase; letters, digits and combining marks kept; every other run becomes ``-``.

    NFKC first so that full-width Latin, compatibility forms and decomposed
    Hangul give the same slug as their usual spelling. Combining marks (M*)
    are kept because Devanagari or Thai words are unreadable without them.
    """
    out: list[str] = []
    pending_dash = False
    for ch in unicodedata.normalize("NFKC", name).lower():
        if unicodedata.category(ch)[0] in "LNM":
            if pending_dash and out:
                out.append("-")
            pending_dash = False
            out.append(ch)
        else:
            pending_dash = True
    slug = "".join(out)
    return RESERVED_SLUGS.get(slug, slug)


def categories_from_names(names: Iterable[str]) -> tuple[Category, ...]:
    """Each name -> Category; empty slugs skipped; first of each slug kept; order kept."""
    seen: set[str] = set()
    result: list[Category] = []
    for raw_name in names:
        name = collapse_whitespace(xml_safe(raw_name))
        slug = slugify(name)
        if not slug or slug in seen:
            continue
        seen.add(slug)
        result.append(Category(name=name, slug=slug))
    return tuple(result)
