"""Operator endpoints: refresh, status, health and metrics.

Owns authentication of ``POST /api/refresh`` (Bearer token compared in
constant time on bytes) and the JSON shapes of docs/api.md. Scanning itself is
``scanner.Scanner``; concurrent refreshes share one scan.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING

from flask import Blueprint, Response, jsonify, request

from feedsvc import health
from feedsvc.errors import ContentRootError, StoreError
from feedsvc.publish import ALL
from feedsvc.store import FileEventsState, ScanFailure, ScanState
from feedsvc.types import FeedInfo
from feedsvc.web.services import Services, services
from feedsvc.web.websub import hub_figures, hub_status

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

log = logging.getLogger(__name__)
bp = Blueprint("api", __name__)


def _json(payload: object, status: int = 200) -> Response:
    response = jsonify(payload)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def _authorised(token: str) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    # Compare bytes: hmac.compare_digest raises TypeError on non-ASCII str.
    return hmac.compare_digest(
        given.strip().encode("utf-8", "surrogatepass"), token.encode("utf-8")
    )


@bp.post("/api/refresh")
def refresh() -> Response:
    svc = services()
    token = svc.settings.server.refresh_token
    if not token:
        return _json({"error": "refresh is disabled: set server.refresh_token"}, 403)
    if not _authorised(token):
        response = _json({"error": "missing or wrong bearer token"}, 401)
        response.headers["WWW-Authenticate"] = 'Bearer realm="feedsvc"'
        return response
    try:
        report = svc.scanner.run()
        svc.feeds.changed()  # every worker serves this scan's feeds once we answer
    except ContentRootError as exc:  # logged by the Scanner, with the folder's path
        return _json({"error": exc.reason}, 503)
    except StoreError:
        return _json({"error": "the store is not available"}, 503)
    log.info("refresh: %s", report.summary())
    return _json(report.as_json())


@bp.get("/api/status")
def status() -> Response:
    svc = services()
    try:
        state = svc.store.last_scan()
        failure = svc.store.last_failure()
        grid = svc.feeds.grid()
        events = svc.store.file_events()
    except StoreError:
        return _json({"status": "degraded", "error": "the store is not available"}, 503)
    failure = _own_failure(svc, state, failure)
    counts = {info.key.language: info.item_count for info in grid if info.key.category == ALL}
    payload: dict[str, object] = {
        "status": "ok",
        "items": counts.pop(ALL, 0),
        "items_by_language": counts,
        "feeds": len(grid),
        "last_scan": None,
        "next_scan": None,
        "errors": [],
        "warnings": [],
        # docs/dates.md: items the clock will bring into the feeds, or take out.
        "scheduled": _scheduled(svc),
        # None until a watcher ran: then whether it sees writes as they happen.
        "file_events": None if events is None else _file_events(events),
    }
    if state is not None:
        interval = timedelta(seconds=svc.settings.watch.interval_seconds)
        payload["last_scan"] = {
            "finished_at": state.finished_at.isoformat(),
            **state.report.as_json(),
        }
        payload["next_scan"] = (state.finished_at + interval).isoformat()
        report = state.report.as_json()
        payload["errors"] = report["errors"]
        payload["warnings"] = report["warnings"]
        if state.report.errors:
            payload["status"] = "degraded"
    if svc.settings.websub.hub or svc.settings.websub.hubs:
        try:
            payload["websub"] = hub_status(svc)
        except StoreError:
            payload["websub"] = None
    reasons, watcher = _health(svc, state, failure)
    failure = _newest_failure(failure, state, watcher)
    if failure is not None:
        # The last scan failed as a whole: the feeds serve the last good state.
        payload["status"] = "degraded"
        payload["error"] = failure.reason
        payload["failed_at"] = failure.failed_at.isoformat()
    if reasons:
        # docs/operations.md, "Health": what each reason means.
        payload["status"] = "degraded"
        payload["reasons"] = reasons
    return _json(payload)


def _own_failure(
    svc: Services, state: ScanState | None, failure: ScanFailure | None
) -> ScanFailure | None:
    """A failure this process saw but the store could not record (it refused writes)."""
    own = svc.scanner.last_failure
    if (
        own is not None
        and (failure is None or own.failed_at > failure.failed_at)
        and (state is None or own.failed_at > state.finished_at)
    ):
        return own
    return failure


def _file_events(events: FileEventsState) -> dict[str, object]:
    return {
        "available": events.available,
        "reason": events.reason,
        "since": events.since.isoformat(),
    }


def _health(
    svc: Services, state: ScanState | None, failure: ScanFailure | None
) -> tuple[list[str], health.WatcherReport | None]:
    """The reasons to be degraded now, and the watcher's report: /api/status and /healthz."""
    return health.reasons_now(
        svc.store,
        svc.settings.store.url,
        svc.settings.watch.interval_seconds,
        svc.clock(),
        last_scan=state,
        failure=failure,
    )


def _newest_failure(
    failure: ScanFailure | None, state: ScanState | None, watcher: health.WatcherReport | None
) -> ScanFailure | None:
    """The failure the watcher reported beside the store, when the store could not take it."""
    if watcher is None or watcher.failure is None or watcher.failed_at is None:
        return failure
    if state is not None and state.finished_at >= watcher.failed_at:
        return failure
    if failure is not None and failure.failed_at >= watcher.failed_at:
        return failure
    return ScanFailure(reason=watcher.failure, failed_at=watcher.failed_at)


def _scheduled(svc: Services) -> list[dict[str, object]] | None:
    """Items still to enter the feeds, then listed items that will expire (None: unknown)."""
    try:
        timed = svc.store.scheduled()
    except StoreError:  # the rest of the status still says what is wrong
        return None
    now = svc.clock()
    return [
        {
            "id": entry.item_id,
            "path": entry.source_path,
            "publishes_at": entry.shows_at.isoformat(),
            "expires_at": None if entry.hides_at is None else entry.hides_at.isoformat(),
            "listed": entry.shows_at <= now,
        }
        for entry in timed
        if entry.shows_at > now or (entry.hides_at is not None and entry.hides_at > now)
    ]


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the last good feeds are served (first line ``ok`` or ``degraded: why``);
    503 only when the store cannot be read (docs/operations.md, "Health")."""
    svc = services()
    try:
        svc.store.ping()
        state = svc.store.last_scan()
        failure = svc.store.last_failure()
    except StoreError:
        return Response("store unavailable\n", 503, content_type="text/plain; charset=utf-8")
    reasons, _watcher = _health(svc, state, failure)
    text = "ok\n" if not reasons else "degraded: " + "; ".join(reasons) + "\n"
    return Response(text, 200, content_type="text/plain; charset=utf-8")


@bp.get("/metrics")
def metrics() -> Response:
    svc = services()
    try:
        figures: list[Collector] = [_StoreFigures(svc.store.last_scan(), svc.feeds.grid())]
    except StoreError:
        figures = [_StoreFigures(None, ())]
    if svc.settings.websub.hub or svc.settings.websub.hubs:
        # The store is down: the hub's figures come back with it.
        with contextlib.suppress(StoreError):
            figures.append(hub_figures(svc))
    return Response(
        svc.metrics.page(*figures), 200, content_type="text/plain; version=0.0.4; charset=utf-8"
    )


class _StoreFigures:
    """What the store says, for ``/metrics``: the same whichever worker answers."""

    def __init__(self, state: ScanState | None, grid: Sequence[FeedInfo]) -> None:
        self._state = state
        self._grid = grid

    def collect(self) -> Iterator[Metric]:
        # Imported here, as everywhere: prometheus_client must first see the
        # environment ``serve`` sets up (metrics.py).
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        items = GaugeMetricFamily(
            "feedsvc_items", "Items in the feeds, by language.", labels=["language"]
        )
        for info in self._grid:
            if info.key.category == ALL:
                items.add_metric([info.key.language], info.item_count)
        yield items
        yield GaugeMetricFamily(
            "feedsvc_feeds", "Feeds in the grid (per format).", value=len(self._grid)
        )
        state = self._state
        if state is None:
            return
        report = state.report
        yield CounterMetricFamily(
            "feedsvc_scans", "Scans recorded by the store, by any process.", state.scans_total
        )
        yield GaugeMetricFamily(
            "feedsvc_last_scan_timestamp_seconds",
            "When the last scan finished.",
            value=state.finished_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "feedsvc_last_scan_duration_seconds",
            "How long the last scan took.",
            value=report.duration_ms / 1000,
        )
        files = GaugeMetricFamily(
            "feedsvc_last_scan_files", "Files by outcome in the last scan.", labels=["outcome"]
        )
        for outcome, n in (
            ("added", report.added),
            ("updated", report.updated),
            ("removed", report.removed),
            ("unchanged", report.unchanged),
            ("failed", len(report.errors)),
        ):
            files.add_metric([outcome], n)
        yield files
