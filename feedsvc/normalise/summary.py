"""Cutting text to a summary length at word or grapheme-cluster boundaries; owns no HTML.

docs/item-fields.md (summary): "the first paragraph, cut at a word boundary near 300
characters". Text without spaces (Korean or Japanese runs, long emoji strings)
is cut at a grapheme-cluster boundary instead, so a cut never splits a Hangul
syllable written as jamo, an emoji ZWJ sequence, a flag or a base letter from
its combining marks.

The ``regex`` module's ``\\X`` is not a dependency; ``is_boundary`` is a sound
approximation of UAX #29 extended grapheme clusters built on ``unicodedata``.
It errs on the side of *not* breaking (e.g. never after a ZWJ), which keeps
every cut safe.
"""

from __future__ import annotations

import unicodedata

ELLIPSIS = "…"
SUMMARY_LIMIT = 300

_ZWJ = 0x200D
_ZWNJ = 0x200C

# UAX #29 Prepend characters (Grapheme_Cluster_Break=Prepend) that occur in text.
_PREPEND = frozenset(
    [*range(0x0600, 0x0606), 0x06DD, 0x070F, 0x0890, 0x0891, 0x08E2, 0x110BD, 0x110CD]
)


def _is_extend(cp: int, category: str) -> bool:
    """Grapheme_Cluster_Break Extend | SpacingMark | ZWJ (GB9, GB9a): never break before."""
    return (
        category in ("Mn", "Me", "Mc")  # combining marks, incl. variation selectors (Mn)
        or cp in (_ZWJ, _ZWNJ)
        or 0x1F3FB <= cp <= 0x1F3FF  # emoji skin-tone modifiers
        or 0xE0020 <= cp <= 0xE007F  # tag characters (subdivision flags)
    )


def _is_control(cp: int, category: str) -> bool:
    """GB4/GB5: Control, CR, LF always break (except CR LF)."""
    if category in ("Cc", "Zl", "Zp"):
        return True
    return (
        category == "Cf"
        and cp not in (_ZWJ, _ZWNJ)
        and cp not in _PREPEND
        and not (0xE0020 <= cp <= 0xE007F)
    )


def _is_regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _is_pictographic(cp: int, category: str) -> bool:
    # Approximates Extended_Pictographic: symbols in the emoji blocks.
    return category == "So" or 0x1F000 <= cp <= 0x1FAFF


def _hangul(cp: int) -> str:
    """Hangul_Syllable_Type: L, V, T, LV, LVT or '' (GB6-GB8)."""
    if 0x1100 <= cp <= 0x115F or 0xA960 <= cp <= 0xA97C:
        return "L"
    if 0x1160 <= cp <= 0x11A7 or 0xD7B0 <= cp <= 0xD7C6:
        return "V"
    if 0x11A8 <= cp <= 0x11FF or 0xD7CB <= cp <= 0xD7FB:
        return "T"
    if 0xAC00 <= cp <= 0xD7A3:
        return "LV" if (cp - 0xAC00) % 28 == 0 else "LVT"
    return ""


def is_boundary(text: str, index: int) -> bool:
    """True when a grapheme cluster may end between ``text[index-1]`` and ``text[index]``."""
    if index <= 0 or index >= len(text):
        return True  # GB1, GB2
    a, b = text[index - 1], text[index]
    ca, cb = ord(a), ord(b)
    cat_a, cat_b = unicodedata.category(a), unicodedata.category(b)
    if a == "\r" and b == "\n":  # GB3
        return False
    if _is_control(ca, cat_a) or _is_control(cb, cat_b):  # GB4, GB5
        return True
    ha, hb = _hangul(ca), _hangul(cb)
    if ha == "L" and hb in ("L", "V", "LV", "LVT"):  # GB6
        return False
    if ha in ("LV", "V") and hb in ("V", "T"):  # GB7
        return False
    if ha in ("LVT", "T") and hb == "T":  # GB8
        return False
    if _is_extend(cb, cat_b):  # GB9, GB9a
        return False
    if ca in _PREPEND:  # GB9b
        return False
    if ca == _ZWJ and _is_pictographic(cb, cat_b):  # GB11 (approximated: any ZWJ)
        return False
    if _is_regional(ca) and _is_regional(cb):  # GB12, GB13: pair regional indicators
        run = 0
        i = index - 1
        while i >= 0 and _is_regional(ord(text[i])):
            run += 1
            i -= 1
        return run % 2 == 0
    return True  # GB999


def cut(text: str, limit: int = SUMMARY_LIMIT) -> str:
    """``text`` if it fits in ``limit`` characters, else a prefix of it plus "…".

    The prefix ends at the last space in the final third of the limit (a word
    boundary); text without such a space is cut at the last grapheme-cluster
    boundary. The result is at most ``limit + 1`` characters and, without the
    ellipsis, always a prefix of ``text``.
    """
    if len(text) <= limit:
        return text
    floor = limit * 2 // 3
    for i in range(limit, floor - 1, -1):
        if text[i].isspace() and is_boundary(text, i):
            return _trimmed(text, i) + ELLIPSIS
    end = limit
    while end > 0 and not is_boundary(text, end):
        end -= 1
    return _trimmed(text, end) + ELLIPSIS


def _trimmed(text: str, end: int) -> str:
    """``text[:end]`` without trailing spaces, unless dropping them would split a cluster."""
    kept = len(text[:end].rstrip())
    return text[:kept] if is_boundary(text, kept) else text[:end]
