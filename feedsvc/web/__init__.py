"""The Flask app: ``create_app(settings)`` wires the store, feed cache and scanner.

Owns HTTP only: routes, status codes, headers. It never starts the
scheduler (a reloader or N workers would each run one): the watcher is
started by ``feedsvc serve``/``feedsvc watch``. Nothing here reads
configuration at import time. Absolute URLs come from ``site.base_url``,
never from the request's Host or forwarded headers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask, Response, current_app, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from feedsvc.dates import utc_now
from feedsvc.errors import StoreError
from feedsvc.metrics import Metrics
from feedsvc.pipeline import Scanner
from feedsvc.publish import FeedCache
from feedsvc.settings import Settings, load_settings
from feedsvc.store import Store, open_store

log = logging.getLogger(__name__)


# Production servers trust a generation read for this long per process; a
# refresh waits it out before answering (FeedCache.settle), so it is never seen stale.
SERVER_RECHECK_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Services:
    """What every request handler may use; built once per app."""

    settings: Settings
    store: Store
    feeds: FeedCache
    scanner: Scanner
    metrics: Metrics
    clock: Callable[[], datetime]


def services() -> Services:
    found: Services = current_app.extensions["feedsvc"]
    return found


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    clock: Callable[[], datetime] = utc_now,
    *,
    recheck_seconds: float = 0.0,
) -> Flask:
    """Build the app. ``settings`` default to ``load_settings()`` (config file + env).

    ``recheck_seconds``: how long a process trusts its read of the store
    generation (see ``FeedCache``); servers pass ``SERVER_RECHECK_SECONDS``.
    """
    settings = settings if settings is not None else load_settings()
    store = store if store is not None else open_store(settings.store.url)
    app = Flask(__name__)
    app.config.update(
        # Unicode in JSON answers as is; sorted keys keep answers stable.
        JSON_AS_ASCII=False,
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    # No redirect "/a//b" -> "/a/b": its Location would be built from the Host header.
    app.url_map.merge_slashes = False
    metrics = Metrics()
    svc = Services(
        settings=settings,
        store=store,
        feeds=FeedCache(settings, store, recheck_seconds=recheck_seconds),
        scanner=Scanner(settings, store, clock, on_report=metrics.scan_report),
        metrics=metrics,
        clock=clock,
    )
    app.extensions["feedsvc"] = svc

    from feedsvc.web import api, feeds, files, pages, websub

    # The feed hot path answers before Flask; every other request reaches Flask.
    app.wsgi_app = feeds.FeedFastPath(app.wsgi_app, svc)  # type: ignore[method-assign]
    app.register_blueprint(feeds.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(websub.bp)
    app.register_blueprint(files.bp)

    @app.before_request
    def start_timer() -> None:
        g.feedsvc_started = time.perf_counter()

    @app.before_request
    def refuse_big_bodies() -> None:
        # Werkzeug enforces MAX_CONTENT_LENGTH only when a body is read, and no
        # route reads one: refuse an oversized request before any work is done.
        limit = app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            raise RequestEntityTooLarge()

    @app.after_request
    def count(response: Response) -> Response:
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        took = time.perf_counter() - g.get("feedsvc_started", time.perf_counter())
        services().metrics.request(rule, response.status_code, took)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    @app.errorhandler(404)
    def not_found(_: Exception) -> Response:
        return Response(
            "Not found. Every feed is listed at / and in /feeds.opml.\n",
            404,
            content_type="text/plain; charset=utf-8",
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        # 400, 405, 413, 431...: a short text, never Werkzeug's HTML page.
        # The exception's own headers are kept (405 carries Allow).
        code = exc.code or 500
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return Response(
            f"{code} {exc.name}.\n", code, headers, content_type="text/plain; charset=utf-8"
        )

    @app.errorhandler(StoreError)
    def store_unavailable(exc: StoreError) -> Response:
        log.error("store unavailable while answering %s: %s", request.path, exc)
        return Response(
            "The store is not available; try again shortly.\n",
            503,
            {"Retry-After": "30"},
            content_type="text/plain; charset=utf-8",
        )

    @app.errorhandler(500)
    def server_error(_: Exception) -> Response:
        # Never a stack trace, path or DSN in an answer: details go to the log.
        return Response("Internal error.\n", 500, content_type="text/plain; charset=utf-8")

    return app
