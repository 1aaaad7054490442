"""Pages for people: the index, the tag and author list, the OPML, item pages, the XSLT.

Owns HTML and OPML; every link is absolute from ``site.base_url`` or a
root-relative path, never derived from the request's Host. Each page is
rendered per request and answered through ``revalidate`` (a strong ETag from
its bytes, 304 when the client's copy is current), like the feeds.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, render_template

from feedsvc.publish import (
    ALL,
    STYLESHEET_NAME,
    feed_path,
    feed_title,
    feed_url,
    item_feeds,
)
from feedsvc.render import FORMATS
from feedsvc.settings import Settings
from feedsvc.text import collapse_whitespace, xml_safe
from feedsvc.types import FACET_AUTHOR, FACET_TAG, TERM_FACETS, FeedInfo, FeedKey, Item
from feedsvc.web.revalidate import revalidate, strong_etag
from feedsvc.web.services import services

bp = Blueprint("pages", __name__)

_PAGE_HEADERS = {
    # Item HTML is sanitised already; this is a second wall against script.
    "Content-Security-Policy": (
        "default-src 'none'; img-src http: https:; style-src 'unsafe-inline'"
    ),
    "Referrer-Policy": "no-referrer",
}


def _page(html: str) -> Response:
    response = Response(html, 200, headers=_PAGE_HEADERS, content_type="text/html; charset=utf-8")
    return revalidate(response, now=services().clock())


HEADLINES = 10  # newest items on the index


def _local(settings: Settings) -> Callable[[datetime], datetime]:
    """Times as people read them: in ``site.timezone``, whole seconds."""
    zone = ZoneInfo(settings.site.timezone)
    return lambda value: value.astimezone(zone).replace(microsecond=0)


def _rows(settings: Settings, infos: Iterable[FeedInfo]) -> list[dict[str, object]]:
    return [
        {
            "info": info,
            "title": feed_title(settings, info),
            "links": [(fmt, feed_path(info.key, fmt)) for fmt in FORMATS],
        }
        for info in infos
    ]


def _render(template: str, **values: object) -> Response:
    settings = services().settings
    return _page(
        render_template(template, site=settings.site, local=_local(settings), all_key=ALL, **values)
    )


@bp.get("/")
def index() -> Response:
    svc = services()
    state = svc.store.last_scan()
    failure = svc.store.last_failure()
    headlines = svc.store.items_for(FeedKey(ALL, ALL), HEADLINES)
    return _render(
        "index.html",
        rows=_rows(svc.settings, svc.feeds.grid()),
        headlines=headlines,
        has_terms=any(svc.feeds.term_grid(facet) for facet in TERM_FACETS),
        last_scan=state.finished_at if state else None,
        failure=failure,
    )


@bp.get("/tags")
def tags() -> Response:
    """Every tag and author feed that has items (too many for the index)."""
    svc = services()
    return _render(
        "tags.html",
        tag_rows=_rows(svc.settings, svc.feeds.term_grid(FACET_TAG)),
        author_rows=_rows(svc.settings, svc.feeds.term_grid(FACET_AUTHOR)),
    )


@bp.get("/feeds.opml")
def opml() -> Response:
    svc = services()
    settings = svc.settings
    outlines = []
    infos = (*svc.feeds.grid(), *(i for f in TERM_FACETS for i in svc.feeds.term_grid(f)))
    for info in infos:
        title = feed_title(settings, info)
        for fmt in FORMATS:
            if fmt.name == "json":
                continue  # OPML 2.0 subscription lists carry RSS/Atom (type="rss")
            outlines.append(
                f'    <outline type="rss" text={quoteattr(xml_safe(f"{title} ({fmt.label})"))} '
                f"title={quoteattr(xml_safe(title))} "
                f"xmlUrl={quoteattr(feed_url(settings, info.key, fmt))} "
                f"htmlUrl={quoteattr(settings.site.base_url + '/')}/>"
            )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<opml version="2.0">\n'
        f"  <head>\n    <title>{escape(xml_safe(settings.site.title))}</title>\n  </head>\n"
        "  <body>\n" + "\n".join(outlines) + "\n  </body>\n</opml>\n"
    )
    response = Response(
        body.encode("utf-8"),
        200,
        content_type="text/x-opml; charset=utf-8",
        headers={"Access-Control-Allow-Origin": "*"},
    )
    return revalidate(response, now=svc.clock())


# The body's own first heading, when it repeats the title the page already shows.
_LEADING_H1 = re.compile(r"\A\s*<h1\b[^>]*>(?P<text>.*?)</h1>", re.S)
_H1 = re.compile(r"<(/?)h1\b", re.I)


def _body_without_h1(item: Item) -> str:
    """The page has one <h1>, the title: a leading body <h1> equal to the title
    goes, any other body <h1> becomes an <h2>. The HTML is the sanitiser's
    well-formed output (normalise/html.py), so tags are matched safely."""
    body = item.content_html
    lead = _LEADING_H1.match(body)
    if lead and collapse_whitespace(re.sub(r"<[^>]*>", "", lead["text"])) == collapse_whitespace(
        item.title
    ):
        body = body[lead.end() :]
    return _H1.sub(r"<\1h2", body)


@bp.get("/items/<path:item_id>")
def item_page(item_id: str) -> Response:
    svc = services()
    item = svc.store.item(item_id, listed=True)  # no draft, nothing scheduled or expired
    if item is None:
        abort(404)
    return _render(
        "item.html",
        item=item,
        body=_body_without_h1(item),
        feeds=_rows(svc.settings, item_feeds(item)),
    )


@bp.get("/" + STYLESHEET_NAME)
def stylesheet() -> Response:
    """The XSLT named by every RSS and Atom feed: a feed as a page in a browser.

    Rendered once per app (it depends on settings only), with a strong ETag.
    """
    svc = services()
    cached: tuple[bytes, str] | None = current_app.extensions.get("feedsvc.stylesheet")
    if cached is None:
        body = render_template(
            "feed.xsl", default_language=svc.settings.site.default_language
        ).encode("utf-8")
        cached = (body, strong_etag(body))
        current_app.extensions["feedsvc.stylesheet"] = cached
    body, etag = cached
    response = Response(body, 200, content_type="application/xslt+xml; charset=utf-8")
    response.headers["Cache-Control"] = f"public, max-age={svc.settings.feeds.cache_seconds}"
    return revalidate(response, now=svc.clock(), etag=etag)
