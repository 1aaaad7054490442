"""The feeds: the grid ``/feeds/{lang|all}/{category|all}.{rss|atom|json}``, and
``/feeds/{lang|all}/{tag|author}/{slug}.{fmt}`` (docs/feeds-for-people.md).

Owns mapping a URL to a cached rendered feed and answering it through the
one conditional-GET helper. Rendering happens in ``publish`` on store change.

Two fronts share ``answer()``: the Flask route, and ``FeedFastPath``, a WSGI
middleware that answers GET/HEAD of an existing feed without Flask's
request/response machinery (the hot path, ~5x cheaper per request; see
bench/README.md). Everything else, 404s and errors included, goes to Flask,
so both fronts give identical statuses, headers and bodies.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, abort, request

from feedsvc.types import FACET_CATEGORY, TERM_FACETS, FeedKey
from feedsvc.web.conditional import Answer, Asked, feed_answer
from feedsvc.web.services import Services, services

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

bp = Blueprint("feeds", __name__)

RULE = "/feeds/<language>/<name>"  # also the metrics label of both fronts
TERM_RULE = "/feeds/<language>/<facet>/<name>"  # tag and author feeds
_PREFIX = "/feeds/"
# Werkzeug's status lines, so both fronts send byte-identical answers.
_STATUS = {200: "200 OK", 304: "304 NOT MODIFIED"}


def answer(svc: Services, language: str, facet: str, name: str, asked: Asked) -> Answer | None:
    """The answer for one feed URL, or None when no such feed exists (404)."""
    category, dot, fmt = name.rpartition(".")
    if not dot or not category or (facet != FACET_CATEGORY and facet not in TERM_FACETS):
        return None
    rendered = svc.feeds.get(FeedKey(language, category, facet), fmt)
    if rendered is None:
        return None
    return feed_answer(
        rendered, asked, cache_seconds=svc.settings.feeds.cache_seconds, now=svc.clock()
    )


@bp.route(RULE, methods=["GET", "HEAD"])
@bp.route(TERM_RULE, methods=["GET", "HEAD"])
def feed(language: str, name: str, facet: str = FACET_CATEGORY) -> Response:
    found = answer(services(), language, facet, name, Asked.of(request.method, request.headers.get))
    if found is None:
        abort(404)
    response = Response(found.body, found.status)
    # Set headers verbatim: the body may be gzip bytes and HEAD has none,
    # so Flask must not recompute Content-Length or add a charset.
    response.headers.clear()
    for header, value in found.headers:
        response.headers[header] = value
    response.automatically_set_content_length = False
    return response


class FeedFastPath:
    """WSGI middleware: GET/HEAD of an existing feed, answered without Flask.

    Coupled to ``feed()`` above and to the app's ``after_request`` hook: same
    answer, same status line, same metrics label. Anything it does not answer
    with 200/304 (another route or method, an unknown feed, an odd path, an
    exception) is handed to Flask untouched, which then answers as it always has.
    """

    def __init__(self, app: WSGIApplication, svc: Services) -> None:
        self._app = app
        self._svc = svc

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        raw_path: str = environ.get("PATH_INFO", "")
        if method not in ("GET", "HEAD") or not raw_path.startswith(_PREFIX):
            return self._app(environ, start_response)
        # PEP 3333: PATH_INFO is bytes as latin-1; decode as Werkzeug's router does.
        path = raw_path.encode("latin-1").decode("utf-8", "replace")
        language, slash, name = path[len(_PREFIX) :].partition("/")
        facet, rule = FACET_CATEGORY, RULE
        if "/" in name:
            facet, _, name = name.partition("/")
            rule = TERM_RULE
        if not slash or not language or not name or "/" in name:
            return self._app(environ, start_response)

        def header(name: str) -> str | None:
            value: Any = environ.get("HTTP_" + name.upper().replace("-", "_"))
            return value if isinstance(value, str) else None

        try:
            found = answer(self._svc, language, facet, name, Asked.of(method, header))
        except Exception:  # Flask asks again, then logs and answers 500 its own way
            found = None
        if found is None:
            return self._app(environ, start_response)
        self._svc.metrics.request(rule, found.status, time.perf_counter() - started)
        start_response(_STATUS[found.status], found.headers)
        return (found.body,) if found.body else ()
