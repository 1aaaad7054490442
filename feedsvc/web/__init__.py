"""The Flask app: ``create_app(settings)`` wires store, feed cache, scanner and routes.

Owns the app and its error answers; the routes are the blueprints', what they
share is ``web/services.py``. HTTP only: routes, status codes, headers. It never starts the
scheduler (a reloader or N workers would each run one): the watcher is
started by ``feedsvc serve``/``feedsvc watch``. Nothing here reads
configuration at import time. Absolute URLs come from ``site.base_url``,
never from the request's Host or forwarded headers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from feedsvc.dates import utc_now
from feedsvc.errors import StoreError
from feedsvc.feed_cache import FeedCache
from feedsvc.metrics import Metrics
from feedsvc.scanner import Scanner
from feedsvc.settings import Settings, load_settings
from feedsvc.store import Store, open_store
from feedsvc.web import api, feeds, files, pages, websub
from feedsvc.web.services import EXTENSION, Services, services
from feedsvc.web.stamp import StampFile, stamp_path

log = logging.getLogger(__name__)

__all__ = ["SERVER_RECHECK_SECONDS", "Services", "create_app", "services"]

# In servers, a worker's requests trust a read of the store's generation this
# long (a refresh is followed at once through the change stamp), and a thread
# of each worker polls it this often to render a new one before requests ask.
SERVER_RECHECK_SECONDS = 0.05


def _feed_cache(settings: Settings, store: Store, recheck_seconds: float) -> FeedCache:
    """A server's cache follows the change stamp beside a SQLite store (web/stamp.py);
    without one (PostgreSQL, or ``recheck_seconds`` 0) each feed request reads the
    generation: instances on other hosts share no file, and must see a refresh."""
    path = stamp_path(settings.store.url) if recheck_seconds > 0 else None
    signal = StampFile(path) if path is not None else None
    return FeedCache(settings, store, signal=signal, recheck_seconds=recheck_seconds)


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    clock: Callable[[], datetime] = utc_now,
    *,
    recheck_seconds: float = 0.0,
) -> Flask:
    """Build the app. ``settings`` default to ``load_settings()`` (config file + env).

    ``recheck_seconds`` > 0 (servers pass ``SERVER_RECHECK_SECONDS``): feed
    requests follow the change stamp beside a SQLite store and trust a
    generation read that long; a thread of each process polls the generation
    as often and renders a new one ahead of requests (see ``FeedCache``).
    0: every feed request reads the generation, nothing runs in the
    background (tests, ``feedsvc build``).
    """
    settings = settings if settings is not None else load_settings()
    store = store if store is not None else open_store(settings.store.url)
    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Unicode in JSON as is
    # No redirect "/a//b" -> "/a/b": its Location would be built from the Host header.
    app.url_map.merge_slashes = False
    metrics = Metrics()
    svc = Services(
        settings=settings,
        store=store,
        feeds=_feed_cache(settings, store, recheck_seconds),
        scanner=Scanner(settings, store, clock, on_report=metrics.scan_report),
        metrics=metrics,
        clock=clock,
    )
    app.extensions[EXTENSION] = svc

    # The feed hot path answers before Flask; every other request reaches Flask.
    app.wsgi_app = feeds.FeedFastPath(app.wsgi_app, svc)  # type: ignore[method-assign]
    app.register_blueprint(feeds.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(websub.bp)
    app.register_blueprint(files.bp)

    app.before_request(_start_timer)
    app.before_request(_refuse_big_bodies)
    app.after_request(_count)
    app.register_error_handler(404, _not_found)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StoreError, _store_unavailable)
    app.register_error_handler(500, _server_error)
    return app


def _start_timer() -> None:
    g.feedsvc_started = time.perf_counter()


def _refuse_big_bodies() -> None:
    # Werkzeug enforces MAX_CONTENT_LENGTH only when a body is read, and no
    # route reads one: refuse an oversized request before any work is done.
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise RequestEntityTooLarge()


def _count(response: Response) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    took = time.perf_counter() - g.get("feedsvc_started", time.perf_counter())
    services().metrics.request(rule, response.status_code, took)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def _not_found(_: Exception) -> Response:
    return Response(
        "Not found. Every feed is listed at / and in /feeds.opml.\n",
        404,
        content_type="text/plain; charset=utf-8",
    )


def _http_error(exc: HTTPException) -> Response:
    # 400, 405, 413, 431...: a short text, never Werkzeug's HTML page.
    # The exception's own headers are kept (405 carries Allow).
    code = exc.code or 500
    headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
    return Response(
        f"{code} {exc.name}.\n", code, headers, content_type="text/plain; charset=utf-8"
    )


def _store_unavailable(exc: StoreError) -> Response:
    log.error("store unavailable while answering %s: %s", request.path, exc)
    return Response(
        "The store is not available; try again shortly.\n",
        503,
        {"Retry-After": "30"},
        content_type="text/plain; charset=utf-8",
    )


def _server_error(_: Exception) -> Response:
    # Never a stack trace, path or DSN in an answer: details go to the log.
    return Response("Internal error.\n", 500, content_type="text/plain; charset=utf-8")
