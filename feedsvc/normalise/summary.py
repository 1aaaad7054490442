"""Cutting text to a summary length at word or grapheme-cluster boundaries; owns no HTML.

docs/item-fields.md (summary): "the first paragraph, cut at a word boundary near 300
characters". Text without spaces (Korean or Japanese runs, long emoji strings)
is cut at a grapheme-cluster boundary instead, so a cut never splits a Hangul
syllable written as jamo, an emoji ZWJ sequence, a flag, an Indic conjunct or
a base letter from its combining marks.

Clusters are UAX #29 extended grapheme clusters as the ``regex`` module's
``\\X`` finds them (its Unicode tables move with the package, not with us).
Matching ``\\X`` costs about as much per character as a Python loop, so it is
matched from the last *reset* character before a position, never from the
start of the text. UAX #29 decides a boundary from the character after it and
runs of characters before it (GB9c Indic conjuncts, GB11 emoji ZWJ sequences,
GB12/13 regional-indicator pairs); a reset character (``_RESET``: a letter,
digit, space, Hangul jamo or control, none of them pictographic, Extend, ZWJ,
a regional indicator or an Indic conjunct consonant) can be part of no such
run. Cluster ends after a reset character are therefore those of the whole
text, and for most text the match covers two characters.
"""

from __future__ import annotations

from itertools import accumulate

import regex

ELLIPSIS = "…"
SUMMARY_LIMIT = 300

_CLUSTER = regex.compile(r"\X")
# Searched backwards ((?r)): the last reset character before a position.
_RESET = regex.compile(
    r"(?r)(?V1)[[\p{GCB=Other}\p{GCB=Control}\p{GCB=CR}\p{GCB=LF}"
    r"\p{GCB=L}\p{GCB=V}\p{GCB=T}\p{GCB=LV}\p{GCB=LVT}]"
    r"--[\p{Extended_Pictographic}\p{InCB=Consonant}]]"
)


def _ends_up_to(text: str, index: int) -> tuple[int, list[int]]:
    """``(start, ends)``: every cluster end in ``start < end <= index``, ascending.

    ``start`` is the last reset character before ``index`` (or 0, itself a
    boundary by UAX #29 GB1 and then included in ``ends``).
    """
    reset = _RESET.search(text, 0, index)
    start = reset.start() if reset is not None else 0
    lengths = map(len, _CLUSTER.findall(text, start, index + 1))
    ends = [end for end in accumulate(lengths, initial=start) if end <= index]
    return start, ends if start == 0 else ends[1:]


def is_boundary(text: str, index: int) -> bool:
    """True when a grapheme cluster may end between ``text[index-1]`` and ``text[index]``."""
    if index <= 0 or index >= len(text):
        return True  # UAX #29 GB1, GB2
    return index in _ends_up_to(text, index)[1]


def _last_boundary(text: str, index: int) -> int:
    """The last cluster boundary at or before ``index``."""
    while True:
        start, ends = _ends_up_to(text, index)
        if ends:
            return ends[-1]
        index = start  # one cluster runs from `start` past `index`: look before it


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
    return _trimmed(text, _last_boundary(text, limit)) + ELLIPSIS


def _trimmed(text: str, end: int) -> str:
    """``text[:end]`` without trailing spaces, unless dropping them would split a cluster."""
    kept = len(text[:end].rstrip())
    return text[:kept] if is_boundary(text, kept) else text[:end]
