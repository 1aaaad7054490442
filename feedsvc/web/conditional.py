"""HTTP caching in one place: validators, 304, gzip and headers, for every route.

Owns the answer to "is the client's copy current?" (RFC 9110 §13) for feeds,
pages and files alike (``not_modified``), and the whole answer to a feed
request. It is plain Python over header strings (no Flask), so the feed fast
path and any WSGI front use the same rules; ``web/revalidate.py`` applies them
to Flask responses. It does not render anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import lru_cache
from typing import NamedTuple

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header, parse_date
from werkzeug.sansio.http import is_resource_modified

from feedsvc.publish import RenderedFeed

# A styled feed (RSS, Atom) opened in a browser: the same bytes under an XML type
# browsers render, so the xml-stylesheet PI turns them into a page. Chromium and
# Firefox show application/rss+xml and application/atom+xml as plain text or
# offer a download (docs/feeds-for-people.md, "In a browser").
PAGE_CONTENT_TYPE = "application/xml; charset=utf-8"
PAGE_ETAG_SUFFIX = "-page"  # another Content-Type is another representation (RFC 9110 §8.8.3)

# RFC 9110 §13.1.2: If-None-Match = "*" / #entity-tag, where a list may hold
# empty elements (§5.6.1). Werkzeug's parse_etags also takes unquoted tags and
# skips what it cannot read, so a header is checked against this first.
_ENTITY_TAG = r'(?:W/)?"[^"]*"'
_ETAG_LIST = re.compile(rf"[ \t]*(?:{_ENTITY_TAG}[ \t]*)?(?:,[ \t]*(?:{_ENTITY_TAG}[ \t]*)?)*")


class Asked(NamedTuple):
    """What a GET or HEAD says about the answers it can use (RFC 9110 §12, §13).

    A NamedTuple rather than a frozen dataclass: one is built per feed request,
    and it is several times cheaper to build.
    """

    method: str
    if_none_match: str | None = None
    if_modified_since: str | None = None
    accept_encoding: str | None = None
    accept: str | None = None

    @classmethod
    def of(cls, method: str, header: Callable[[str], str | None]) -> Asked:
        """From a request's method and its header lookup (Flask's or a WSGI environ's)."""
        return cls(
            method,
            header("If-None-Match"),
            header("If-Modified-Since"),
            header("Accept-Encoding"),
            header("Accept"),
        )


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# Clients send a handful of distinct Accept-Encoding values and a feed has one
# Last-Modified per generation: memoising both keeps the hot path a lookup.
@lru_cache(maxsize=512)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110 §12.5.3: gzip is acceptable unless absent or given q=0.

    Not werkzeug's ``parse_accept_header``: it lets ``*`` outrank an explicit
    ``gzip;q=0`` and drops an entry whose q it cannot read.
    """
    if not accept_encoding:
        return False
    star: float | None = None
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        coding = coding.strip().lower()
        q = 1.0
        match = re.search(r"q\s*=\s*([0-9.]+)", params)
        if match:
            try:
                q = float(match.group(1))
            except ValueError:
                q = 0.0
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q
    return star is not None and star > 0


@lru_cache(maxsize=512)
def wants_page(accept: str | None, media_type: str) -> bool:
    """RFC 9110 §12.5.1: ``accept`` ranks text/html above ``media_type``.

    A browser's navigation sends ``text/html,...,*/*;q=0.8``; feed readers
    name feed types, or send ``*/*`` (a tie, which keeps the feed type).
    """
    if not accept:
        return False
    ranked = parse_accept_header(accept, MIMEAccept)
    return ranked.quality("text/html") > ranked.quality(media_type)


@lru_cache(maxsize=1024)
def _none_match(header: str, etags: tuple[str, ...]) -> bool:
    """RFC 9110 §13.1.2: any of ``etags`` is in ``header`` by the weak comparison.

    Werkzeug's ``is_resource_modified`` decides once the header is known to be
    a list of entity-tags (it would read ``abc`` as the tag ``"abc"``); the
    header is stripped because werkzeug takes only an unpadded ``*``. Memoised:
    a reader revalidates with the same header until the feed changes.
    """
    header = header.strip()
    if header != "*" and _ETAG_LIST.fullmatch(header) is None:
        return False  # not a list of entity-tags: the condition is not met
    return any(not is_resource_modified(http_if_none_match=header, etag=tag) for tag in etags)


def not_modified(
    etags: tuple[str, ...], last_modified: datetime | None, asked: Asked, now: datetime
) -> bool:
    """Whether a GET or HEAD answers 304: the client holds one of ``etags``, or a
    copy at least as new as ``last_modified`` (None: dates prove nothing).

    RFC 9110 §13.2.2: If-None-Match when present, even empty or unreadable;
    If-Modified-Since only without it. Werkzeug's ``is_resource_modified`` lets
    If-Modified-Since decide when If-None-Match holds no tag it can read, and
    answers 304 to a date in the future: both are kept from it here.
    """
    if asked.if_none_match is not None:
        return _none_match(asked.if_none_match, etags)
    if asked.if_modified_since is None or last_modified is None:
        return False
    since = parse_date(asked.if_modified_since)
    # §13.1.3: ignore an invalid date; a date in the future is no proof the
    # client has the current version (it would pin a stale copy), so ignore it too.
    if since is None or since > now:
        return False
    return not is_resource_modified(
        http_if_modified_since=asked.if_modified_since,
        last_modified=_at_most(last_modified, now),
    )


def _at_most(value: datetime, now: datetime) -> datetime:
    """RFC 9110 §8.8.2.1: never later than the response's own date; whole seconds."""
    return min(value, now).replace(microsecond=0)


def last_modified(feed: RenderedFeed, now: datetime) -> datetime:
    """The ``Last-Modified`` of a feed answered at ``now``."""
    return _at_most(feed.last_modified, now)


@lru_cache(maxsize=512)
def _http_date_text(value: datetime) -> str:
    return format_datetime(value, usegmt=True)


def _page_etag(etag: str) -> str:
    return etag[:-1] + PAGE_ETAG_SUFFIX + '"'


@lru_cache(maxsize=1024)
def _feed_etags(etag: str, gzip_etag: str) -> tuple[str, ...]:
    """Every tag a client may hold for a feed's bytes: plain, gzip, and as a page."""
    return (etag, gzip_etag, _page_etag(etag), _page_etag(gzip_etag))


def feed_answer(feed: RenderedFeed, asked: Asked, *, cache_seconds: int, now: datetime) -> Answer:
    """The full answer to a GET or HEAD of one feed.

    A styled feed asked for by a browser (``wants_page``) keeps its bytes and
    is labelled ``PAGE_CONTENT_TYPE``; such feeds vary by ``Accept`` too.
    """
    gzip_ok = accepts_gzip(asked.accept_encoding)
    page = feed.styled and wants_page(asked.accept, feed.content_type.partition(";")[0])
    etag = feed.gzip_etag if gzip_ok else feed.etag
    headers = [
        ("ETag", _page_etag(etag) if page else etag),
        ("Cache-Control", f"public, max-age={cache_seconds}"),
        ("Vary", "Accept, Accept-Encoding" if feed.styled else "Accept-Encoding"),
        ("Access-Control-Allow-Origin", "*"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if not_modified(_feed_etags(feed.etag, feed.gzip_etag), feed.last_modified, asked, now):
        # RFC 9110 §15.4.5: a 304 carries the validators' ETag, Cache-Control and
        # Vary, not representation metadata such as Last-Modified (Werkzeug strips
        # it from 304s too, so every front sends the same headers).
        return Answer(304, headers, b"")
    body = feed.gzip_body if gzip_ok else feed.body
    headers.insert(1, ("Last-Modified", _http_date_text(last_modified(feed, now))))
    headers.append(("Content-Type", PAGE_CONTENT_TYPE if page else feed.content_type))
    headers.append(("Content-Length", str(len(body))))
    if feed.link:
        headers.append(("Link", feed.link))  # WebSub §4: hub and self for discovery
    if gzip_ok:
        headers.append(("Content-Encoding", "gzip"))
    return Answer(200, headers, b"" if asked.method == "HEAD" else body)
