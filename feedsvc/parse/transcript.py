"""Broadcast transcripts (docs/content-formats.md) -> RawDocument; owns their layout rules only.

Layout, as in the sample ``002_ad53fbf95e7bb634.txt``::

    date 2024-11-13 [News Today] N. KOREA RATIFIES TREATY WITH RUSSIA
    입력 2024-11-13 15:42:35 수정 2024-11-13 15:43:40 News Today      (optional)
    [LEAD]
    Following Russian President ...
    [REPORT]
    ...

- Section markers alone on a line (``[LEAD]``, ``[REPORT]``, any ``[WORD]``)
  are structure: they end a paragraph and are never output as text.
- Two or more blank lines separate paragraphs; a single blank line (or a
  plain line break) inside a paragraph is a hard wrap, joined with a space.
- The ``[LEAD]`` paragraphs are the summary, and also the first body paragraphs.
- An attribution line (see ``is_attribution``) starting a paragraph makes
  the rest of that paragraph -- or, if it stands alone, the next paragraph --
  a quote with its source.

Dates are returned naive: they are local times in ``site.timezone``, which
normalise applies.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from datetime import datetime

from feedsvc.errors import SourceError
from feedsvc.text import collapse_whitespace
from feedsvc.types import RawDocument

HEADER = re.compile(r"^\s*date\s+(\d{4}-\d{2}-\d{2})\s+\[([^\]]+)\]\s+(.+)$")
STAMP = re.compile(
    r"^\s*입력\s+(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2}(?::\d{2})?)"
    r"(?:\s+수정\s+(\d{4}-\d{2}-\d{2})\s+(\d{1,2}:\d{2}(?::\d{2})?))?(?:\s+.*)?$"
)
MARKER = re.compile(r"^\[[^\]\n]{1,40}\]$")
LEAD = "LEAD"

# Attribution heuristic limits: a source line is short, a source name shorter.
MAX_ATTRIBUTION_CHARS = 80
MAX_SOURCE_SIDE_CHARS = 50
MAX_SOURCE_SIDE_WORDS = 8
# A trailing "Univ." / "Inc." is an abbreviation, a trailing "year." ends a sentence.
_ABBREVIATION = re.compile(r"(?:^|\s)[A-Z][A-Za-z.]{0,5}\.$")
_SENTENCE_END = re.compile(r"[.?!,;:…]$")


@dataclass(frozen=True, slots=True)
class Paragraph:
    section: str | None
    lines: tuple[str, ...]  # its hard-wrapped lines, each stripped

    @property
    def text(self) -> str:
        return collapse_whitespace(" ".join(self.lines))


def is_transcript(text: str) -> bool:
    """Whether the first non-empty line is a transcript header."""
    first_line = text.lstrip().partition("\n")[0]
    return HEADER.match(first_line) is not None


# What HEADER and STAMP capture, as a date and an optional time.
_DATE_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?: (\d{1,2}):(\d{2})(?::(\d{2}))?)?")


def _date(path: str, value: str, line_no: int, what: str) -> datetime:
    """``YYYY-MM-DD`` with an optional ``H:MM`` or ``H:MM:SS``, as written (naive).

    Read from the digits the patterns captured rather than by ``strptime``,
    which tried up to three formats, each miss an exception: a transcript's
    dates cost as much as the rest of its parse. A value out of range (month
    13, hour 24, second 60) is as impossible here as it was there.
    """
    match = _DATE_TIME.fullmatch(value)
    if match is not None:
        try:
            year, month, day, hour, minute, second = (int(p or 0) for p in match.groups())
            return datetime(year, month, day, hour, minute, second)
        except ValueError:
            pass
    raise SourceError(path, f"impossible {what} date/time {value!r} (line {line_no})")


def _side_ok(side: str) -> bool:
    """One side of a source line: short, no sentence marks."""
    words = side.split()
    return (
        0 < len(side) <= MAX_SOURCE_SIDE_CHARS
        and len(words) <= MAX_SOURCE_SIDE_WORDS
        and not any(c in side for c in '?!;:"“”')
    )


def _starts_like_a_name(text: str) -> bool:
    """A capital or a caseless letter (Hangul, digits) first."""
    return not text[0].islower()


def _written_like_a_name(text: str) -> bool:
    """Most words start like a name: ``Coach Kim Min-jae``, not ``The ratio of exports``."""
    words = text.split()
    return sum(1 for w in words if w[0].islower()) * 2 < len(words)


def _full_name(text: str) -> bool:
    """Two words or more, every one starting like a name: ``Park Ji-sung``."""
    words = text.split()
    return len(words) >= 2 and all(_starts_like_a_name(w) for w in words)


def is_attribution(line: str) -> bool:
    """Whether a one-line paragraph names the source of the quote that follows.

    Told by its shape (docs/content-formats.md, "Transcripts"), not by capital
    letters: ``N. Korean Central TV/`` (a source ending with a slash) or
    ``Coach Kim Min-jae / Korea national team`` (a name, a spaced slash, an
    affiliation). The line is short, has one slash, the name is written like
    a name, the affiliation starts like one or follows a full name, and the line
    does not end like a sentence (a final ``.`` only after a capitalised
    abbreviation such as ``Univ.``). So prose such as "Prices rose 5% / year.",
    "Exports / imports" or "Input / output is balanced." stays prose.
    """
    line = line.strip()
    if not line or len(line) > MAX_ATTRIBUTION_CHARS:
        return False
    if line.endswith("/"):
        # A short line ending with a slash is the shape itself: any source.
        source = line[:-1].strip()
        return (
            "/" not in source
            and _side_ok(source)
            and _starts_like_a_name(source)
            and not _SENTENCE_END.search(source)
        )
    who, sep, affiliation = line.partition(" / ")
    who, affiliation = who.strip(), affiliation.strip()
    if not sep or "/" in affiliation or "/" in who:
        return False
    if not (_side_ok(who) and _side_ok(affiliation)):
        return False
    if not (_starts_like_a_name(who) and _written_like_a_name(who)):
        return False
    # The affiliation may be a lowercase role ("former national team captain")
    # after a full name; after anything else it starts like a name.
    if not (_starts_like_a_name(affiliation) or _full_name(who)):
        return False
    return not _SENTENCE_END.search(line) or _ABBREVIATION.search(line) is not None


def _paragraphs(lines: list[str]) -> list[Paragraph]:
    paragraphs: list[Paragraph] = []
    section: str | None = None
    current: list[str] = []
    blank_run = 0

    def flush() -> None:
        if current:
            paragraphs.append(Paragraph(section, tuple(current)))
            current.clear()

    for line in lines:
        stripped = line.strip()
        if not stripped:
            blank_run += 1
            continue
        if MARKER.match(stripped):
            flush()
            section = collapse_whitespace(stripped[1:-1]).upper()
        else:
            if blank_run >= 2:
                flush()
            current.append(stripped)
        blank_run = 0
    flush()
    return paragraphs


def _quote_html(source: str, quote: str) -> str:
    # HTML §4.4.4: the attribution goes outside the blockquote, in a figcaption.
    cite = html.escape(source.rstrip("/").strip(), quote=False)
    return (
        f"<figure><blockquote><p>{html.escape(quote, quote=False)}</p></blockquote>"
        f"<figcaption>— <cite>{cite}</cite></figcaption></figure>"
    )


def _body_html(paragraphs: list[Paragraph]) -> str:
    """Paragraphs -> HTML; an attribution and the words after it become a quote.

    The quoted words are the rest of the attribution's own paragraph (the
    sample: attribution, one blank line, the quote) or, when the attribution
    stands alone, the whole next paragraph.
    """
    out: list[str] = []
    index = 0
    while index < len(paragraphs):
        para = paragraphs[index]
        index += 1
        if is_attribution(para.lines[0]):
            if len(para.lines) > 1:
                quote = collapse_whitespace(" ".join(para.lines[1:]))
                out.append(_quote_html(para.lines[0], quote))
                continue
            if index < len(paragraphs):
                out.append(_quote_html(para.lines[0], paragraphs[index].text))
                index += 1
                continue
        out.append(f"<p>{html.escape(para.text, quote=False)}</p>")
    return "\n".join(out)


def parse_transcript(path: str, text: str) -> RawDocument:
    """A broadcast transcript -> RawDocument (its header fills title, category and dates)."""
    lines = text.split("\n")
    index = 0
    while index < len(lines) - 1 and not lines[index].strip():
        index += 1
    header = HEADER.match(lines[index])
    if header is None:  # callers check is_transcript first
        raise SourceError(path, "not a transcript: no 'date YYYY-MM-DD [Category] Title' line")
    published = _date(path, header.group(1), index + 1, "header")
    updated: datetime | None = None
    category = collapse_whitespace(header.group(2)) or None
    title = collapse_whitespace(header.group(3))
    index += 1
    probe = index
    while probe < len(lines) and not lines[probe].strip():
        probe += 1
    if probe < len(lines) and (stamp := STAMP.match(lines[probe])):
        published = _date(path, f"{stamp.group(1)} {stamp.group(2)}", probe + 1, "입력")
        if stamp.group(3):
            updated = _date(path, f"{stamp.group(3)} {stamp.group(4)}", probe + 1, "수정")
        index = probe + 1
    paragraphs = _paragraphs(lines[index:])
    lead = [p.text for p in paragraphs if p.section == LEAD]
    return RawDocument(
        path=path,
        body_html=_body_html(paragraphs),
        title=title,
        category=category,
        summary=" ".join(lead) or None,
        published=published,
        updated=updated,
    )
