"""What a renderer takes and what a format is: the render package's shared types, no format.

Owns ``FeedDocument`` (one feed to render) and ``Format`` (one entry of the
registry in ``feedsvc/render/__init__.py``). It imports no format module, so
the formats and the registry both import it and never each other's package.
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
