"""Language of an item: a declared tag checked, or the text detected with lingua; owns no defaults.

SPEC §2 (language): front matter `lang`/`language`, else detected from the
text, as a lowercase BCP 47 primary subtag. lingua is chosen for its accuracy
on short texts (titles, leads). The detector is built once, lazily, on first
use (never at import time, STYLE "Anti-patterns") and cached for the process.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lingua import Language, LanguageDetector, LanguageDetectorBuilder

# The languages this news service expects. A closed set keeps detection fast
# and stops short texts drifting into look-alike languages (Tagalog, Latin...).
DETECTED_LANGUAGES = (
    Language.KOREAN,
    Language.ENGLISH,
    Language.JAPANESE,
    Language.CHINESE,
    Language.FRENCH,
    Language.GERMAN,
    Language.SPANISH,
    Language.PORTUGUESE,
    Language.RUSSIAN,
    Language.ITALIAN,
    Language.VIETNAMESE,
    Language.THAI,
    Language.INDONESIAN,
    Language.ARABIC,
)
# The first characters are enough to tell a language within this closed set,
# and they bound the cost: lingua is linear in length, ~0.7 µs per character
# of Latin script (measured: 1,000 chars 0.6-0.8 ms, 200 chars 0.14-0.21 ms;
# Hangul 0.02 ms at any length, the script alone decides). Below ~120
# characters lingua switches to slower high-accuracy n-grams (1.4 ms at 120).
DETECT_CHARS = 200
# Small: below this relative distance between the two best guesses lingua
# answers None and the site's default language applies.
MIN_RELATIVE_DISTANCE = 0.05

_PRIMARY_SUBTAG = re.compile(r"[a-z]{2,3}")
# BCP 47 / ISO 639-2 "undetermined": as good as no tag at all.
_UNDETERMINED = "und"


class InvalidLanguageTag(ValueError):
    """A declared language is not a BCP 47 tag with a 2-3 letter primary subtag."""


def primary_subtag(tag: str) -> str | None:
    """``ko-KR`` -> ``ko``, ``EN`` -> ``en``, ``zh_Hant`` -> ``zh``; ``und`` -> None.

    Raises ``InvalidLanguageTag`` for anything else (``english``, ``x-klingon``).
    """
    primary = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
    if not _PRIMARY_SUBTAG.fullmatch(primary):
        raise InvalidLanguageTag(tag)
    return None if primary == _UNDETERMINED else primary


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    return (
        LanguageDetectorBuilder.from_languages(*DETECTED_LANGUAGES)
        .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
        .build()
    )


def detect(text: str) -> str | None:
    """ISO 639-1 code of the language of ``text``, or None when unsure or no letters."""
    sample = text[:DETECT_CHARS]
    if not any(ch.isalpha() for ch in sample):
        return None
    found = _detector().detect_language_of(sample)
    if found is None:
        return None
    return str(found.iso_code_639_1.name).lower()
