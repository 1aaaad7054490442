"""Feed rendering: one module per format and a registry of them.

Owns turning a ``FeedDocument`` (feed metadata plus its items, already
sorted) into bytes. It does not choose items, read the store or know about
HTTP. The same document always gives the same bytes: no clock, no library
version, explicit ordering. Routes, the index page and the OPML are derived
from ``FORMATS``; a new format is one module plus one entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from feedsvc.types import FeedKey, Item


@dataclass(frozen=True, slots=True)
class FeedDocument:
    """One feed to render. ``items`` are already sorted newest first.

    ``language`` is None for the ``all`` languages column (then each entry
    carries its own language). ``feed_id`` is a permanent IRI; ``self_url``
    and ``home_url`` are absolute and built from ``site.base_url`` only.
    ``hubs``: WebSub hub URLs the feed names (``rel="hub"``, JSON Feed ``hubs``).
    ``stylesheet``: the URL of the XSLT that RSS and Atom name in an
    ``xml-stylesheet`` processing instruction, so a browser shows a page
    (docs/feeds-for-people.md); None writes none. JSON Feed ignores it.
    """

    key: FeedKey
    title: str
    description: str
    feed_id: str
    self_url: str
    home_url: str
    language: str | None
    author: str
    ttl_minutes: int
    items: tuple[Item, ...]
    hubs: tuple[str, ...] = ()
    stylesheet: str | None = None


@dataclass(frozen=True, slots=True)
class Format:
    name: str  # as in the URL suffix: rss, atom, json
    label: str  # as shown to people
    media_type: str  # without parameters
    render: Callable[[FeedDocument], bytes]
    # XML that names ``FeedDocument.stylesheet``: a browser may be shown it as a page.
    styled: bool = False

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"


def _formats() -> tuple[Format, ...]:
    from feedsvc.render import atom, jsonfeed, rss

    return (rss.FORMAT, atom.FORMAT, jsonfeed.FORMAT)


FORMATS: tuple[Format, ...] = _formats()
FORMATS_BY_NAME: dict[str, Format] = {f.name: f for f in FORMATS}
