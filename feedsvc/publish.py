"""What is published: the feed grid, feed documents and their rendered bytes.

Owns choosing a feed's items and metadata from the store and settings,
rendering them once per store change, and keeping the bytes, their gzip form
and their validators for lookup. It knows nothing of HTTP requests: the web
layer and ``feedsvc build`` both take their bytes from here, so a static
build and the live service serve identical feeds.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from feedsvc.errors import StoreError
from feedsvc.normalise.slug import slugify
from feedsvc.normalise.urls import tag_uri
from feedsvc.render import FORMATS, FORMATS_BY_NAME, FeedDocument, Format
from feedsvc.rendered_lru import RenderedLru
from feedsvc.settings import Settings
from feedsvc.store import Store
from feedsvc.types import ALL as TYPES_ALL
from feedsvc.types import (
    FACET_AUTHOR,
    FACET_CATEGORY,
    FACET_TAG,
    TERM_FACETS,
    FeedInfo,
    FeedKey,
    Item,
)

ALL = TYPES_ALL  # the grid word (feedsvc.types.GRID_WORDS)
# Where the built-in WebSub hub takes subscriptions (web/websub.py).
HUB_PATH = "/websub"
# Feeds carry dates from their items; an empty grid cell never renders, so this
# only dates a feed whose items somehow carry none (kept fixed for stable bytes).
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def feed_path(key: FeedKey, fmt: Format) -> str:
    """The URL path of one feed, percent-encoded (slugs may be Hangul).

    ``/feeds/{lang}/{category}.{fmt}`` for the grid and, with one more segment
    so that no slug can collide with a category, ``/feeds/{lang}/tag/{slug}.{fmt}``
    and ``/feeds/{lang}/author/{slug}.{fmt}`` (docs/feeds-for-people.md).
    """
    facet = "" if key.facet == FACET_CATEGORY else key.facet + "/"
    language, slug = quote(key.language, safe=""), quote(key.category, safe="")
    return f"/feeds/{language}/{facet}{slug}.{fmt.name}"


def feed_url(settings: Settings, key: FeedKey, fmt: Format) -> str:
    return settings.site.base_url + feed_path(key, fmt)


def feed_at(settings: Settings, url: str) -> tuple[FeedKey, Format] | None:
    """The grid cell and format whose feed URL is exactly ``url`` (the inverse of
    ``feed_url``), or None. The cell may hold no items now."""
    prefix = settings.site.base_url + "/feeds/"
    if not url.startswith(prefix):
        return None
    language, slash, name = url[len(prefix) :].partition("/")
    category, dot, suffix = name.rpartition(".")
    fmt = FORMATS_BY_NAME.get(suffix)
    if not slash or not dot or fmt is None:
        return None
    key = FeedKey(unquote(language), unquote(category))
    if not key.language or not key.category or feed_url(settings, key, fmt) != url:
        return None  # not the one spelling feedsvc publishes
    return key, fmt


def hub_urls(settings: Settings) -> tuple[str, ...]:
    """Every WebSub hub a feed names: the built-in one (when on), then ``websub.hubs``."""
    own = (settings.site.base_url + HUB_PATH,) if settings.websub.hub else ()
    return own + tuple(hub for hub in settings.websub.hubs if hub not in own)


def link_header(hubs: tuple[str, ...], self_url: str) -> str:
    """WebSub §4 discovery as an HTTP ``Link`` header (RFC 8288): hubs, then self."""
    links = [f'<{hub}>; rel="hub"' for hub in hubs]
    links.append(f'<{self_url}>; rel="self"')
    return ", ".join(links)


# The XSLT that RSS and Atom name for browsers (web/pages.py serves it).
STYLESHEET_NAME = "feed.xsl"


def stylesheet_href(settings: Settings) -> str:
    """A root-relative URL: browsers apply only a same-origin XSLT, whatever
    host the feed was reached by; the path under ``site.base_url`` is kept."""
    return urlsplit(settings.site.base_url).path.rstrip("/") + "/" + STYLESHEET_NAME


def item_page_path(item_id: str) -> str:
    return "/items/" + quote(item_id, safe="/")


def feed_title(settings: Settings, info: FeedInfo) -> str:
    """``Site``, ``Site: News Today``, ``Site (ko)``, ``Site: 정치 (ko)``,
    ``Site: tag 국회 (ko)``, ``Site: by Kim Min-su``."""
    title = settings.site.title
    name = info.category_name or info.key.category
    if info.key.facet == FACET_TAG:
        title += f": tag {name}"
    elif info.key.facet == FACET_AUTHOR:
        title += f": by {name}"
    elif info.key.category != ALL:
        title += f": {name}"
    if info.key.language != ALL:
        title += f" ({info.key.language})"
    return title


def feed_language(key: FeedKey, items: tuple[Item, ...], default: str) -> str:
    """docs/language.md: every feed has a language: its grid language, else the one all
    its items share, else the site's default. Entries keep their own."""
    if key.language != ALL:
        return key.language
    languages = {item.language for item in items}
    return languages.pop() if len(languages) == 1 else default


def item_feeds(item: Item) -> tuple[FeedInfo, ...]:
    """The feeds an item appears in, in its own language: the language feed, then
    its categories, tags and authors (for links and autodiscovery on its page)."""
    lang = item.language
    infos = [FeedInfo(FeedKey(lang, ALL), 0)]
    infos += [FeedInfo(FeedKey(lang, c.slug), 0, c.name) for c in item.categories]
    for facet, names in ((FACET_TAG, item.tags), (FACET_AUTHOR, item.authors)):
        infos += [FeedInfo(FeedKey(lang, slugify(n), facet), 0, n) for n in names if slugify(n)]
    once: dict[FeedKey, FeedInfo] = {}
    for info in infos:
        once.setdefault(info.key, info)  # first-seen order, each feed once
    return tuple(once.values())


def _term_names(items: tuple[Item, ...], key: FeedKey) -> Iterator[str]:
    """The display names the newest items give a tag or author slug."""
    for item in items:
        names = item.tags if key.facet == FACET_TAG else item.authors
        yield from (name for name in names if slugify(name) == key.category)


def feed_document(
    settings: Settings, info: FeedInfo, fmt: Format, items: tuple[Item, ...]
) -> FeedDocument:
    site = settings.site
    key = info.key
    return FeedDocument(
        key=key,
        title=feed_title(settings, info),
        description=site.description or site.title,
        # RFC 4151 tag URI: the feed's identity, like the items', never depends on base_url.
        feed_id=tag_uri(site.id_prefix, f"feeds/{key.path_stem}"),
        self_url=feed_url(settings, key, fmt),
        home_url=site.base_url + "/",
        language=feed_language(key, items, site.default_language),
        author=site.author,
        ttl_minutes=max(1, settings.watch.interval_seconds // 60),
        items=items,
        hubs=hub_urls(settings),
        stylesheet=stylesheet_href(settings),
    )


@dataclass(frozen=True, slots=True)
class RenderedFeed:
    """Bytes of one feed as served, with validators computed from the bytes."""

    body: bytes
    gzip_body: bytes
    etag: str  # strong, quoted; the identity (uncompressed) representation
    gzip_etag: str  # RFC 9110 §8.8.3: another content-coding is another representation
    last_modified: datetime
    content_type: str
    item_count: int
    link: str = ""  # the WebSub discovery ``Link`` header value
    # Styled XML feeds only: the same bytes as a browser's page (see web/conditional.py).
    styled: bool = False

    @property
    def nbytes(self) -> int:
        """What keeping this feed costs, roughly: both bodies (for RenderedLru)."""
        return len(self.body) + len(self.gzip_body)


def render_feed(
    settings: Settings, info: FeedInfo, fmt: Format, items: tuple[Item, ...]
) -> RenderedFeed:
    doc = feed_document(settings, info, fmt, items)
    body = fmt.render(doc)
    digest = hashlib.blake2b(body, digest_size=12).hexdigest()
    newest = max((item.updated for item in items), default=EPOCH)
    return RenderedFeed(
        body=body,
        # mtime=0 keeps the gzip bytes (and so the gzip ETag) a function of the body alone.
        gzip_body=gzip.compress(body, compresslevel=6, mtime=0),
        etag=f'"{digest}"',
        gzip_etag=f'"{digest}-gz"',
        last_modified=newest.astimezone(UTC),
        content_type=fmt.content_type,
        item_count=len(items),
        link=link_header(doc.hubs, doc.self_url),
        styled=fmt.styled,
    )


class FeedCache:
    """Rendered feeds by (key, format), valid for one store generation.

    The hot path is a dictionary lookup plus one cheap ``generation()`` read.
    When the generation moves, the grid is re-read and feeds are rendered
    again lazily, each at most once per generation. Thread-safe.

    Tag and author feeds are not read at start-up: each is rendered on its
    first request and kept in a ``RenderedLru`` of ``feeds.term_cache_bytes``
    for the generation. A feed that once had items and has none now (any
    facet; ``Store.known_feed``) renders as a valid feed without items; a
    feed that never existed is None (404).

    ``recheck_seconds`` > 0 trusts a generation read for that long (the
    servers use 0.05 s): the read is half the cost of a feed request (SQLite
    ~25 µs, PostgreSQL ~110 µs; bench/README.md). A scan in this process calls
    ``settle()``, which makes this process see it at once and returns only when
    every other process's trusted read has expired, so whoever asked for the
    scan sees its result from any worker.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        recheck_seconds: float = 0.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._lock = threading.Lock()
        self._generation = -1
        self._grid: dict[FeedKey, FeedInfo] = {}
        self._rendered: dict[tuple[FeedKey, str], RenderedFeed] = {}
        self._terms: RenderedLru[RenderedFeed] = RenderedLru(settings.feeds.term_cache_bytes)
        self._term_lists: dict[str, tuple[FeedInfo, ...]] = {}
        self._recheck = recheck_seconds
        self._monotonic = monotonic
        self._checked_at = -math.inf

    def settle(self) -> None:
        """After a scan committed: forget the trusted read, then wait out the others'."""
        with self._lock:
            self._checked_at = -math.inf
        if self._recheck > 0:
            time.sleep(self._recheck)

    def _sync(self) -> tuple[int, dict[FeedKey, FeedInfo], dict[tuple[FeedKey, str], RenderedFeed]]:
        if self._recheck > 0:
            now = self._monotonic()
            with self._lock:
                if self._generation >= 0 and now - self._checked_at < self._recheck:
                    return self._generation, self._grid, self._rendered
        else:
            now = 0.0
        try:
            generation = self._store.generation()
        except StoreError:
            with self._lock:
                if self._generation < 0:
                    raise
                # The store is down (a restart, a dropped connection): subscribers
                # keep getting the last feeds rendered rather than errors.
                return self._generation, self._grid, self._rendered
        with self._lock:
            if generation != self._generation:
                self._grid = {info.key: info for info in self._store.feeds()}
                self._rendered = {}
                self._term_lists = {}
                self._generation = generation
            self._checked_at = now
            return self._generation, self._grid, self._rendered

    def grid(self) -> tuple[FeedInfo, ...]:
        """Every feed that exists now, sorted by key."""
        return tuple(self._sync()[1].values())

    def term_grid(self, facet: str) -> tuple[FeedInfo, ...]:
        """Every tag (or author) feed that has items now, sorted by slug, ``all`` first.

        Read once per generation, on first use: listing pages and the OPML only.
        """
        generation = self._sync()[0]
        with self._lock:
            found = self._term_lists.get(facet)
        if found is not None:
            return found
        found = self._store.term_feeds(facet)
        with self._lock:
            if self._generation == generation:
                self._term_lists[facet] = found
        return found

    def get(self, key: FeedKey, fmt_name: str) -> RenderedFeed | None:
        """The rendered feed, or None when that feed never existed or no such format."""
        fmt = FORMATS_BY_NAME.get(fmt_name)
        if fmt is None:
            return None
        generation, grid, rendered = self._sync()
        if key.facet != FACET_CATEGORY:
            return self._term_feed(generation, key, fmt)
        found = rendered.get((key, fmt.name))
        if found is not None:
            return found
        info = grid.get(key)
        if info is None:
            info = self._store.known_feed(key)
            if info is None:
                return None
            items: tuple[Item, ...] = ()  # it once existed: a valid feed, no items
        else:
            items = self._store.items_for(key, self._settings.feeds.max_items)
        feed = render_feed(self._settings, info, fmt, items)
        with self._lock:
            if self._generation == generation:
                self._rendered[(key, fmt.name)] = feed
        return feed

    def _term_feed(self, generation: int, key: FeedKey, fmt: Format) -> RenderedFeed | None:
        found = self._terms.get(generation, (key, fmt.name))
        if found is not None:
            return found
        known = self._store.known_feed(key)  # also its display name
        if known is None:
            return None
        items = self._store.items_for(key, self._settings.feeds.max_items)
        name = next(iter(_term_names(items, key)), known.category_name)
        info = FeedInfo(key=key, item_count=len(items), category_name=name)
        feed = render_feed(self._settings, info, fmt, items)
        self._terms.put(generation, (key, fmt.name), feed)
        return feed

    def term_cache_stats(self) -> tuple[int, int]:
        """(tag and author feeds kept rendered, their bytes)."""
        return self._terms.stats()

    def all_feeds(self) -> Iterator[tuple[FeedInfo, Format, RenderedFeed]]:
        """Every feed with items, grid first, then tags and authors, in every format."""
        infos = (*self.grid(), *(i for facet in TERM_FACETS for i in self.term_grid(facet)))
        for info in infos:
            for fmt in FORMATS:
                feed = self.get(info.key, fmt.name)
                if feed is not None:
                    yield info, fmt, feed
