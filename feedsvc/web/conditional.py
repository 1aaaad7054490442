"""HTTP caching for rendered feeds, in one place: validators, 304, gzip, headers.

Owns the answer to "which status, headers and bytes for this feed and these
request headers". It is plain Python over header strings (no Flask), so the
same rules serve every route and any WSGI front. It does not render feeds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import lru_cache

from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

from feedsvc.publish import RenderedFeed

# A styled feed (RSS, Atom) opened in a browser: the same bytes under an XML type
# browsers render, so the xml-stylesheet PI turns them into a page. Chromium and
# Firefox show application/rss+xml and application/atom+xml as plain text or
# offer a download (docs/feeds-for-people.md, "In a browser").
PAGE_CONTENT_TYPE = "application/xml; charset=utf-8"
PAGE_ETAG_SUFFIX = "-page"  # another Content-Type is another representation (RFC 9110 §8.8.3)

_ETAG = re.compile(r'\s*(W/)?("[^"]*")\s*(?:,|$)')


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


# Clients send a handful of distinct Accept-Encoding values and a feed has one
# Last-Modified per generation: memoising both keeps the hot path a lookup.
@lru_cache(maxsize=512)
def accepts_gzip(accept_encoding: str | None) -> bool:
    """RFC 9110 §12.5.3: gzip is acceptable unless absent or given q=0."""
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


def _etag_matches(header: str, *etags: str) -> bool:
    """RFC 9110 §13.1.2 If-None-Match uses the weak comparison function."""
    if header.strip() == "*":
        return True
    wanted = set(etags)
    pos = 0
    while pos < len(header):
        match = _ETAG.match(header, pos)
        if match is None:
            return False  # not a list of entity-tags: the condition is not met
        if match.group(2) in wanted:
            return True
        pos = match.end()
    return False


def _http_date(value: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def not_modified(
    feed: RenderedFeed,
    *,
    if_none_match: str | None,
    if_modified_since: str | None,
    now: datetime,
) -> bool:
    """RFC 9110 §13.2.2: If-None-Match first; If-Modified-Since only without it."""
    if if_none_match is not None:
        etags = (feed.etag, feed.gzip_etag)
        return _etag_matches(if_none_match, *etags, *(_page_etag(tag) for tag in etags))
    if if_modified_since is None:
        return False
    since = _http_date(if_modified_since)
    # §13.1.3: ignore an invalid date; a date in the future is no proof the
    # client has the current version (it would pin a stale copy), so ignore it too.
    if since is None or since > now:
        return False
    return last_modified(feed, now) <= since


def last_modified(feed: RenderedFeed, now: datetime) -> datetime:
    """RFC 9110 §8.8.2.1: never later than the response's own date; whole seconds."""
    return min(feed.last_modified, now).replace(microsecond=0)


@lru_cache(maxsize=512)
def _http_date_text(value: datetime) -> str:
    return format_datetime(value, usegmt=True)


def _page_etag(etag: str) -> str:
    return etag[:-1] + PAGE_ETAG_SUFFIX + '"'


def feed_answer(
    feed: RenderedFeed,
    *,
    method: str,
    if_none_match: str | None,
    if_modified_since: str | None,
    accept_encoding: str | None,
    cache_seconds: int,
    now: datetime,
    accept: str | None = None,
) -> Answer:
    """The full answer to a GET or HEAD of one feed.

    A styled feed asked for by a browser (``wants_page``) keeps its bytes and
    is labelled ``PAGE_CONTENT_TYPE``; such feeds vary by ``Accept`` too.
    """
    gzip_ok = accepts_gzip(accept_encoding)
    page = feed.styled and wants_page(accept, feed.content_type.partition(";")[0])
    etag = feed.gzip_etag if gzip_ok else feed.etag
    headers = [
        ("ETag", _page_etag(etag) if page else etag),
        ("Cache-Control", f"public, max-age={cache_seconds}"),
        ("Vary", "Accept, Accept-Encoding" if feed.styled else "Accept-Encoding"),
        ("Access-Control-Allow-Origin", "*"),
        ("X-Content-Type-Options", "nosniff"),
    ]
    if not_modified(
        feed, if_none_match=if_none_match, if_modified_since=if_modified_since, now=now
    ):
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
    return Answer(200, headers, b"" if method == "HEAD" else body)
