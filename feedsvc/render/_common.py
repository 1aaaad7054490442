"""Field rules shared by every format; owns no serialisation and no library.

RSS, Atom and JSON Feed must say the same thing about an item: the same
safe title, the same dates at the same precision, the same tag list, the
same image type. Each rule lives here once; the format modules only decide
where a value goes. Every string that leaves this module went through
``xml_safe``, the one text filter shared by XML and JSON output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import quote, urlsplit

from feedsvc.dates import newest_updated
from feedsvc.render.model import FeedDocument
from feedsvc.text import collapse_whitespace, xml_safe
from feedsvc.types import Item

UNTITLED = "(untitled)"
GENERATOR = "feedsvc"  # never with a version: bytes must not move on an upgrade

# A fixed table, not ``mimetypes``: that module reads /etc/mime.types and
# friends, so its answers (and our bytes) would differ between machines.
_IMAGE_TYPES = {
    ".avif": "image/avif",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
    ".jpe": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpg": "image/jpeg",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}


# Characters a URI may not carry as they are (RFC 3986 §2): anything outside
# printable ASCII, plus the ASCII characters RFC 3986 never allows unencoded.
_NOT_URI = re.compile(r"[^\x21-\x7e]|[\"<>\\^`{|}]")


def text(value: str) -> str:
    """Any free text (summary, HTML, URL): XML-illegal code points removed."""
    return xml_safe(value)


def line(value: str) -> str:
    """A one-line label (name, category, tag): safe and whitespace-collapsed."""
    return collapse_whitespace(xml_safe(value))


def title(value: str, fallback: str = UNTITLED) -> str:
    """A title is one line and never empty (RSS 2.0 and RFC 4287 §4.2.14)."""
    return line(value) or fallback


def moment(value: datetime) -> datetime:
    """A date as every format carries it: whole seconds, the item's own offset.

    RFC 822 has no fractions of a second, so Atom and JSON Feed drop them too
    and all three formats agree to the second.
    """
    if value.tzinfo is None:  # Item promises aware dates; never guess silently
        raise ValueError(f"naive datetime in a feed: {value!r}")
    return value.replace(microsecond=0)


def rfc3339(value: datetime) -> str:
    """RFC 3339 §5.6 date-time with the item's own numeric offset."""
    return moment(value).isoformat(timespec="seconds")


def feed_updated(doc: FeedDocument) -> datetime:
    """The feed-level date (``dates.newest_updated``) as every format carries it.

    A feed without items is dated ``dates.EPOCH``, so an empty feed renders to
    the same bytes forever (no clock anywhere in render/).
    """
    return moment(newest_updated(doc.items))


def uri(value: str) -> str:
    """A link as a URI: an IRI mapped per RFC 3987 §3.1 (UTF-8, percent-encoded).

    ``/feeds/ko/정치.rss`` is a fine IRI, but RSS 2.0 ``<link>`` and Media RSS
    ``url`` must be URIs (the W3C validator rejects raw non-ASCII there), so
    every link in every format takes this one form. Ids are never touched:
    an id is compared character by character (RFC 4287 §4.2.6).
    """
    return _NOT_URI.sub(lambda match: quote(match.group(), safe=""), text(value).strip())


def item_url(item: Item, doc: FeedDocument) -> str:
    """Every entry links somewhere: its own url, else the feed's home page."""
    return uri(item.url) or uri(doc.home_url)


def item_id(item: Item) -> str:
    """The permanent IRI of an item (its guid), never empty."""
    return text(item.guid).strip() or text(item.url).strip() or text(item.id)


def feed_author(doc: FeedDocument) -> str:
    """RFC 4287 §4.1.1: a feed needs an author unless every entry has one."""
    return line(doc.author) or title(doc.title, GENERATOR)


def item_authors(item: Item) -> tuple[str, ...]:
    return _unique(line(name) for name in item.authors)


def tags(item: Item) -> tuple[str, ...]:
    """Category names, then the item's own tags; blanks and repeats dropped."""
    names = [category.name for category in item.categories]
    return _unique(line(name) for name in (*names, *item.tags))


def image_type(url: str) -> str | None:
    """The media type of an image URL, from its path's extension, if known."""
    try:
        path = urlsplit(url).path.lower()
    except ValueError:  # e.g. an unbalanced "[" in the host part
        return None
    dot = path.rfind(".")
    if dot < 0 or "/" in path[dot:]:
        return None
    return _IMAGE_TYPES.get(path[dot:])


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    # A dict keeps first-seen order: the output order is the input order.
    return tuple(dict.fromkeys(value for value in values if value))
