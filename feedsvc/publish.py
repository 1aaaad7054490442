"""What is published: feed URLs, titles, documents and their rendered bytes; not caching.

Owns a feed's metadata (from its items and the settings), its URL, and its
rendered bytes with their gzip form and validators (``render_feed``). When
feeds are rendered and how long they are kept is ``feed_cache``'s. It knows
nothing of HTTP requests: the web layer and ``feedsvc build`` both take their
bytes from here, so a static build and the live service serve identical feeds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

from zlib_ng import gzip_ng

from feedsvc.dates import newest_updated
from feedsvc.normalise.slug import slugify
from feedsvc.normalise.urls import tag_uri
from feedsvc.render import FORMATS_BY_NAME, FeedDocument, Format
from feedsvc.settings import Settings
from feedsvc.types import ALL as TYPES_ALL
from feedsvc.types import (
    FACET_AUTHOR,
    FACET_CATEGORY,
    FACET_TAG,
    FeedInfo,
    FeedKey,
    Item,
)

ALL = TYPES_ALL  # the grid word (feedsvc.types.GRID_WORDS)
# Where the built-in WebSub hub takes subscriptions (web/websub.py).
HUB_PATH = "/websub"


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


def term_names(items: tuple[Item, ...], key: FeedKey) -> Iterator[str]:
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
    return RenderedFeed(
        body=body,
        # mtime=0 keeps the gzip bytes (and so the gzip ETag) a function of the body alone.
        # zlib-ng: the same level and nearly the same size as zlib, in half the time
        # (README, "Why these libraries").
        gzip_body=gzip_ng.compress(body, compresslevel=6, mtime=0),  # type: ignore[no-untyped-call]
        etag=f'"{digest}"',
        gzip_etag=f'"{digest}-gz"',
        last_modified=newest_updated(items).astimezone(UTC),
        content_type=fmt.content_type,
        item_count=len(items),
        link=link_header(doc.hubs, doc.self_url),
        styled=fmt.styled,
    )
