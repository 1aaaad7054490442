"""Front-matter values coerced against each field's schema; owns no precedence between sources.

``RawDocument.meta`` arrives with every YAML scalar as ``str`` (so ``0123``,
``no`` and ``2024-05-06`` are still text) and TOML values in TOML's own types
(docs/content-formats.md, "Front-matter documents"). Each reader here accepts both, names the
key in a ``SourceError`` when a value is present but unusable, and returns
``None`` when the key is absent or empty so the caller can try the next source.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from email.utils import parsedate_to_datetime

from feedsvc.errors import SourceError
from feedsvc.text import collapse_whitespace, xml_safe

_TRUE = frozenset({"true", "yes", "on", "1", "y"})
_FALSE = frozenset({"false", "no", "off", "0", "n"})

# Markup that slipped into a title, an excerpt or a name. Elements whose
# content is code (script, style...) go with their content, up to their end
# tag or, unclosed, to the end; then every complete tag of a real HTML element
# goes, so "a<b", "x < y" and "Q&A on <tariffs>" survive as the author wrote.
_CODE_ELEMENTS = re.compile(
    r"<(script|style|template|noscript|textarea|iframe|object|svg|math)\b[^>]*>"
    r".*?(?:</\1\s*>|\Z)",
    re.S | re.I,
)
_MARKUP = re.compile(
    r"<!--.*?(?:-->|\Z)|</?(?:a|abbr|address|article|aside|audio|b|base|bdi|bdo|big|"
    r"blink|blockquote|body|br|button|canvas|caption|center|cite|code|col|colgroup|dd|"
    r"del|details|dfn|dialog|div|dl|dt|em|embed|fieldset|figcaption|figure|font|footer|"
    r"form|frame|frameset|h[1-6]|head|header|hr|html|i|iframe|img|input|ins|kbd|label|"
    r"legend|li|link|main|mark|marquee|meta|nav|object|ol|option|p|picture|pre|q|s|"
    r"samp|script|section|select|small|source|span|strike|strong|style|sub|summary|"
    r"sup|svg|table|tbody|td|template|tfoot|th|thead|time|title|tr|tt|u|ul|var|"
    r"video|wbr)(?:\s[^<>]*)?/?>",
    re.S | re.I,
)

# 2024/05/06 and 2024.05.06, optionally with a time: common outside ISO 8601.
_DOTTED_DATE = re.compile(
    r"(\d{4})[./](\d{1,2})[./](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)
_SHOWN_MAX = 80
# A date whose year has five digits or more (or a sign): a date, but not one datetime can hold.
_LONG_YEAR = re.compile(r"\s*(?:[+-]\d{4,}|\d{5,})-\d{1,2}-\d{1,2}")


def plain_text(value: str) -> str:
    """Markup stripped (script and style with their content), entities decoded,
    whitespace collapsed, XML-safe: text every feed format carries as text."""
    if "<" in value:
        value = _MARKUP.sub(" ", _CODE_ELEMENTS.sub(" ", value))
    return collapse_whitespace(xml_safe(html.unescape(value)))


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= _SHOWN_MAX else text[:_SHOWN_MAX] + "…"


@dataclass(frozen=True, slots=True)
class Meta:
    """Front matter of one file, read key by key; errors name the file and the key."""

    path: str
    values: Mapping[str, object]

    def error(self, key: str, reason: str) -> SourceError:
        return SourceError(self.path, f"front matter {key!r}: {reason}")

    def first(self, *keys: str) -> tuple[str, object] | None:
        """The first of ``keys`` whose value is not null and not blank."""
        for key in keys:
            value = self.values.get(key)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if isinstance(value, list | tuple | dict) and not value:
                continue
            return key, value
        return None

    # -- scalars -----------------------------------------------------------

    def _scalar_text(self, key: str, value: object) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        if isinstance(value, datetime | date | time):
            return value.isoformat()
        raise self.error(key, f"expected text, got {type(value).__name__}")

    def text(self, *keys: str) -> str | None:
        """A scalar as text; a list joined with ", " (YAML `title: [a, b]`)."""
        found = self.first(*keys)
        if found is None:
            return None
        key, value = found
        if isinstance(value, list | tuple):
            return ", ".join(self._scalar_text(key, v) for v in value if v is not None)
        return self._scalar_text(key, value)

    def identifier(self, *keys: str) -> str | None:
        """An id: text kept exactly ("0123" stays "0123"); a TOML number as written."""
        found = self.first(*keys)
        if found is None:
            return None
        key, value = found
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.error(key, f"expected text, got {type(value).__name__}")
        return xml_safe(str(value)).strip() or None

    def names(self, *keys: str) -> tuple[str, ...] | None:
        """A list of names, or one string. A string is split on commas only:
        "News Today" is one name, "a, b" two (a string is never a list of letters)."""
        found = self.first(*keys)
        if found is None:
            return None
        key, value = found
        if isinstance(value, list | tuple):
            parts = [self._scalar_text(key, v) for v in value if v is not None]
        else:
            parts = self._scalar_text(key, value).split(",")
        cleaned = (plain_text(p) for p in parts)
        return tuple(dict.fromkeys(n for n in cleaned if n)) or None  # de-duplicated, in order

    def authors(self, *keys: str) -> tuple[str, ...] | None:
        """`author: Name`, `authors: [Name, ...]`, or mappings with a `name`."""
        found = self.first(*keys)
        if found is None:
            return None
        key, value = found
        entries = list(value) if isinstance(value, list | tuple) else [value]
        names: list[str] = []
        for entry in entries:
            value = entry.get("name") if isinstance(entry, Mapping) else entry
            if value is None:
                continue
            name = plain_text(self._scalar_text(key, value))
            if name and name not in names:
                names.append(name)
        return tuple(names) or None

    def flag(self, key: str) -> bool | None:
        """A boolean: true/yes/on/1 or false/no/off/0 (any case), or a TOML bool."""
        found = self.first(key)
        if found is None:
            return None
        parsed = _to_bool(found[1])
        if parsed is None:
            raise self.error(key, f"{_shown(found[1])!r} is not true or false")
        return parsed

    def flag_if_boolean(self, key: str) -> bool | None:
        """Like ``flag``, but a value that is not a boolean is None, not an error
        (`published` is a date or a flag)."""
        found = self.first(key)
        return None if found is None else _to_bool(found[1])

    def date(self, *keys: str, zone: tzinfo, skip_flags: bool = False) -> datetime | None:
        """A date or date-time, aware in ``zone``; an unparsable value is an error.

        ``skip_flags``: a boolean-looking value is not a date but a flag
        (`published: false` means draft, docs/content-formats.md), so the next key is tried.
        """
        for key in keys:
            found = self.first(key)
            if found is None:
                continue
            value = found[1]
            if skip_flags and _to_bool(value) is not None:
                continue
            parsed = _to_datetime(value)
            if parsed is not None:
                try:
                    return localise(parsed, zone)
                except OverflowError:  # 9999-12-31T23:59:59Z in UTC+9, 0001-01-01 with an offset
                    raise self.error(key, _out_of_range(value)) from None
            if isinstance(value, str) and _LONG_YEAR.match(value):
                raise self.error(key, _out_of_range(value))
            raise self.error(key, f"{_shown(value)!r} is not a valid date")
        return None


def _out_of_range(value: object) -> str:
    return (
        f"{_shown(value)!r} is out of range: a date must fall between the years 1 and 9999, "
        "also once moved to UTC and to the site's time zone"
    )


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    return None


def _to_datetime(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if isinstance(value, str):
        return parse_date_text(value)
    return None


def parse_date_text(text: str) -> datetime | None:
    """ISO 8601 / RFC 3339 (with or without time or offset), `YYYY-MM-DD HH:MM[:SS]`,
    `YYYY/MM/DD`, RFC 822 (`Wed, 13 Nov 2024 15:42:35 +0900`); None if none fits."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _DOTTED_DATE.fullmatch(text)
    if match:
        y, mo, d, h, mi, s = (int(g) if g else 0 for g in match.groups())
        try:
            return datetime(y, mo, d, h, mi, s)
        except ValueError:
            return None
    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    # email.utils marks "-0000" (no zone information) as naive: local time then.
    return parsed


def localise(moment: datetime, zone: tzinfo) -> datetime:
    """Aware, in the site's zone. Naive means local time in ``zone``; in a DST gap
    or overlap fold=0 picks the earlier offset, then normalises (docs/dates.md).
    Raises OverflowError for instants outside datetime's range."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=zone, fold=0)
    # Through UTC: astimezone() to the datetime's own tzinfo is a no-op, which
    # would leave a time in a DST gap (02:30 on a spring-forward day) as it is.
    return moment.astimezone(UTC).astimezone(zone)
