"""Pages for people: the feed index, the OPML list and one page per item.

Owns HTML and OPML; every link is absolute from ``site.base_url`` or a
root-relative path, never derived from the request's Host.
"""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape, quoteattr

from flask import Blueprint, Response, abort, current_app, render_template, request

from feedsvc.publish import ALL, STYLESHEET_NAME, feed_path, feed_title, feed_url
from feedsvc.render import FORMATS
from feedsvc.text import xml_safe
from feedsvc.web import services

bp = Blueprint("pages", __name__)

_PAGE_HEADERS = {
    # Item HTML is sanitised already; this is a second wall against script.
    "Content-Security-Policy": (
        "default-src 'none'; img-src http: https:; style-src 'unsafe-inline'"
    ),
    "Referrer-Policy": "no-referrer",
}


def _page(html: str) -> Response:
    return Response(html, 200, headers=_PAGE_HEADERS, content_type="text/html; charset=utf-8")


@bp.get("/")
def index() -> Response:
    svc = services()
    grid = svc.feeds.grid()
    rows = [
        {
            "info": info,
            "title": feed_title(svc.settings, info),
            "links": [(fmt, feed_path(info.key, fmt)) for fmt in FORMATS],
        }
        for info in grid
    ]
    state = svc.store.last_scan()
    return _page(
        render_template(
            "index.html",
            site=svc.settings.site,
            rows=rows,
            formats=FORMATS,
            last_scan=state.finished_at if state else None,
            all_key=ALL,
        )
    )


@bp.get("/feeds.opml")
def opml() -> Response:
    svc = services()
    settings = svc.settings
    outlines = []
    for info in svc.feeds.grid():
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
    return Response(
        body.encode("utf-8"),
        200,
        content_type="text/x-opml; charset=utf-8",
        headers={"Access-Control-Allow-Origin": "*"},
    )


@bp.get("/items/<path:item_id>")
def item_page(item_id: str) -> Response:
    svc = services()
    item = svc.store.item(item_id)
    if item is None or item.draft:
        abort(404)
    return _page(render_template("item.html", site=svc.settings.site, item=item))


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
        cached = (body, hashlib.blake2b(body, digest_size=12).hexdigest())
        current_app.extensions["feedsvc.stylesheet"] = cached
    body, etag = cached
    response = Response(body, 200, content_type="application/xslt+xml; charset=utf-8")
    response.set_etag(etag)
    response.headers["Cache-Control"] = f"public, max-age={svc.settings.feeds.cache_seconds}"
    response.make_conditional(request)  # turns itself into a 304 when it matches
    return response
