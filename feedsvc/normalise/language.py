"""Language of an item: a declared tag checked, or the prose detected; owns no defaults.

docs/language.md: front matter `lang`/`language`, else detected from the
prose, as a lowercase BCP 47 primary subtag. The rules, in order
(``docs/language.md`` has the measured accuracy):

1. only prose is read: the caller passes the title and the body's prose
   (``normalise.html.BodyFacts.prose``: no code, inline code, URLs or math);
2. script first: kana means Japanese; Hangul means Korean unless the prose
   is mostly Latin letters (a Korean syllable counts as three letters);
3. otherwise lingua, within a closed set of languages, on the title and the
   first ``DETECT_CHARS`` characters of prose; when it is not confident the
   answer is None and the caller uses ``site.default_language``.

lingua is chosen for its accuracy on short texts (titles, leads). The
detector is built once, lazily, on first use (never at import time, STYLE
"Anti-patterns") and cached for the process.
"""

from __future__ import annotations

import re
from functools import lru_cache

from lingua import ConfidenceValue, Language, LanguageDetector, LanguageDetectorBuilder

from feedsvc import budget
from feedsvc.types import GRID_WORDS

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
# lingua's confidence (0-1, summing to 1 over DETECTED_LANGUAGES) must be at
# least this, and this far ahead of the runner-up; else the answer is None.
# Measured on tests/data/language-eval.jsonl (docs/language.md): one-word
# titles ("hugo": es 0.26) fall below, short English sentences stay above.
MIN_CONFIDENCE = 0.4
MIN_MARGIN = 0.15

_PRIMARY_SUBTAG = re.compile(r"[a-z]{2,3}")
# BCP 47 / ISO 639-2 "undetermined": as good as no tag at all.
_UNDETERMINED = "und"


# Script counts decide before lingua (rule 2). A Hangul syllable carries about
# as much as three Latin letters: below that share the prose is "mostly Latin".
HANGUL_WEIGHT = 3
# Characters of title and prose whose scripts are counted: enough for any
# item, and a bound on the cost for 2 MB bodies.
SCRIPT_CHARS = 4000


class InvalidLanguageTag(ValueError):
    """A declared language is not a BCP 47 tag with a 2-3 letter primary subtag."""

    def __init__(self, tag: str, reason: str = "") -> None:
        super().__init__(tag)
        self.tag = tag
        self.reason = reason or f"{tag!r} is not a BCP 47 language tag such as 'ko' or 'en-US'"


def primary_subtag(tag: str) -> str | None:
    """``ko-KR`` -> ``ko``, ``EN`` -> ``en``, ``zh_Hant`` -> ``zh``; ``und`` -> None.

    Raises ``InvalidLanguageTag`` for anything else (``english``, ``x-klingon``)
    and for the grid's reserved words (``all``), which mean "every language".
    """
    primary = re.split(r"[-_]", tag.strip(), maxsplit=1)[0].lower()
    if not _PRIMARY_SUBTAG.fullmatch(primary):
        raise InvalidLanguageTag(tag)
    if primary in GRID_WORDS:
        raise InvalidLanguageTag(
            tag, f"{tag!r} is reserved in the feed grid (/feeds/{primary}/...), not a language"
        )
    return None if primary == _UNDETERMINED else primary


@lru_cache(maxsize=1)
def _detector() -> LanguageDetector:
    return (
        LanguageDetectorBuilder.from_languages(*DETECTED_LANGUAGES)
        .with_minimum_relative_distance(MIN_RELATIVE_DISTANCE)
        .build()
    )


# lingua loads its models lazily, per n-gram length. A sample with at least
# this many letters it reads by its trigram models alone (0.07 s and 18 MB to
# load); a shorter one by the models of every length (1.3 s and 200 MB more).
# Measured (docs/language.md): 123 letters, trigrams only; 118 letters, every
# length. So warming up takes a long sample, and a short sample is detected
# outside the file's time budget: the first one loads those models (a one-off
# second), and any is at most DETECT_CHARS long, so no file can abuse it.
LONG_SAMPLE_LETTERS = 120
_LONG_WARM_UP = (
    "A paragraph of plain English prose, long enough that the language detector reads "
    "it by its trigram models alone, as it reads the opening of most stories."
)


def load_models() -> None:
    """Load lingua's trigram models now, outside any file's time budget."""
    with budget.not_counted():
        _detector().compute_language_confidence_values(_LONG_WARM_UP)


def _confidence(sample: str, letters: int) -> list[ConfidenceValue]:
    if letters >= LONG_SAMPLE_LETTERS:
        return _detector().compute_language_confidence_values(sample)
    with budget.not_counted():  # the first short sample loads every model length
        return _detector().compute_language_confidence_values(sample)


# Runs of each script, counted by the regex engine (a per-character Python
# loop was a fifth of a file's CPU). Latin: every letter below U+0250, as
# ``str.isalpha`` says (ASCII, Latin-1, Latin Extended-A/B).
_LATIN_RUNS = re.compile(
    "[" + "".join(re.escape(chr(cp)) for cp in range(0x250) if chr(cp).isalpha()) + "]+"
)
# Hiragana, Katakana (without its middle dot U+30FB, punctuation in CJK alike),
# Katakana Phonetic Extensions, halfwidth Katakana.
_KANA_RUNS = re.compile("[\u3040-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9d]+")
# Hangul syllables, Jamo and compatibility Jamo.
_HANGUL_RUNS = re.compile("[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]+")


def _count(runs: re.Pattern[str], text: str) -> int:
    return sum(map(len, runs.findall(text)))


def _script_decides(text: str) -> str | None:
    """Rule 2: "ja" or "ko" when the script decides, else None (lingua's turn).

    Latin letters are counted only where they matter: Hangul ahead of kana.
    """
    if text.isascii():
        return None
    kana, hangul = _count(_KANA_RUNS, text), _count(_HANGUL_RUNS, text)
    if hangul > kana and hangul * HANGUL_WEIGHT >= _count(_LATIN_RUNS, text):
        return "ko"
    if kana > hangul:
        return "ja"
    return None


def detect(title: str, prose: str = "") -> str | None:
    """ISO 639-1 code of the language of ``title`` and ``prose``, or None when unsure.

    ``prose`` must already be prose only (no code, URLs or math).
    """
    text = f"{title}\n{prose}" if title and prose else title or prose
    by_script = _script_decides(text[:SCRIPT_CHARS])
    if by_script is not None:
        return by_script
    sample = text[:DETECT_CHARS]
    letters = sum(map(str.isalpha, sample))
    if not letters:
        return None
    values = _confidence(sample, letters)
    if not values:
        return None
    best = values[0]
    runner_up = values[1].value if len(values) > 1 else 0.0
    if best.value < MIN_CONFIDENCE or best.value - runner_up < MIN_MARGIN:
        return None  # not confident: the caller's default, never a guess
    return str(best.language.iso_code_639_1.name).lower()
