"""Category names to ``Category(name, slug)``; owns slug rules, not where names come from.

docs/ids-and-slugs.md (categories): a slug is lowercase, runs of spaces and punctuation
become ``-``, Unicode letters are kept (``News Today`` -> ``news-today``,
``정치`` -> ``정치``), and names that differ in meaningful characters keep
different slugs (``C``, ``C++``, ``C#``). The rule (``docs/ids-and-slugs.md``):

1. NFKC, then lowercase: full-width, compatibility and case variants meet;
2. letters, digits and combining marks are meaningful and kept;
3. the symbols of ``SPELLED`` are meaningful too, and written as ``_`` plus
   their name, attached to what precedes them: ``C++`` -> ``c_plus_plus``,
   ``C#`` -> ``c_sharp``, ``Q&A`` -> ``q_and-a``;
4. every other character (spaces, other punctuation) separates words: a run
   of them is one ``-`` between two words, nothing at the ends;
5. a slug equal to a grid word (``all``) gets a leading ``_``: ``_all``.

Names never produce ``_`` otherwise, so a slug can be read back into its
sequence of words and symbols: two names that differ in a meaningful
character never share a slug, and nothing has to be told apart after the
fact. Names differing only in case, width, spacing or separating punctuation
(``News``, ``news``, `` NEWS ``, ``news!``) are one category.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache

from feedsvc.text import collapse_whitespace, xml_safe
from feedsvc.types import GRID_WORDS, Category

# Symbols that carry meaning in names people give categories (C++, C#, F#,
# Q&A, AT&T, @home, 100%), and how a slug spells them.
SPELLED = {"+": "plus", "#": "sharp", "&": "and", "@": "at", "%": "percent"}
# The marker of a spelled symbol and of a reserved word: never made from a name.
MARK = "_"


# A pure function of its argument, called for every tag and author of every
# item, twice on a write (codec.py): the same few hundred names over and over.
@lru_cache(maxsize=4096)
def slugify(name: str) -> str:
    """A name's slug by the rule above; ``""`` for a name of separators only."""
    out: list[str] = []
    pending_dash = False
    after_symbol = False
    for ch in unicodedata.normalize("NFKC", name).lower():
        spelled = SPELLED.get(ch)
        if spelled is not None:
            out.append(MARK + spelled)
            pending_dash, after_symbol = False, True
        elif unicodedata.category(ch)[0] in "LNM":
            if out and (pending_dash or after_symbol):
                out.append("-")
            pending_dash = after_symbol = False
            out.append(ch)
        else:
            pending_dash = True
    slug = "".join(out)
    return MARK + slug if slug in GRID_WORDS else slug


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
