"""Operator endpoints: refresh, status, health and metrics.

Owns authentication of ``POST /api/refresh`` (Bearer token compared in
constant time on bytes) and the JSON shapes of docs/api.md. Scanning itself is
``scanner.Scanner``; concurrent refreshes share one scan.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
from datetime import timedelta

from flask import Blueprint, Response, jsonify, request

from feedsvc import health
from feedsvc.errors import ContentRootError, StoreError
from feedsvc.publish import ALL
from feedsvc.store import FileEventsState, ScanFailure, ScanState
from feedsvc.web.services import Services, services
from feedsvc.web.websub import hub_metric_lines, hub_status

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
    lines = svc.metrics.lines()
    try:
        state = svc.store.last_scan()
        grid = svc.feeds.grid()
    except StoreError:
        state, grid = None, ()
    lines += [
        "# HELP feedsvc_items Items in the feeds, by language.",
        "# TYPE feedsvc_items gauge",
    ]
    for info in grid:
        if info.key.category == ALL:
            lines.append(f'feedsvc_items{{language="{info.key.language}"}} {info.item_count}')
    lines += ["# HELP feedsvc_feeds Feeds in the grid (per format).", "# TYPE feedsvc_feeds gauge"]
    lines.append(f"feedsvc_feeds {len(grid)}")
    if state is not None:
        r = state.report
        lines += [
            "# HELP feedsvc_scans_total Scans recorded by the store, by any process.",
            "# TYPE feedsvc_scans_total counter",
            f"feedsvc_scans_total {state.scans_total}",
            "# HELP feedsvc_last_scan_timestamp_seconds When the last scan finished.",
            "# TYPE feedsvc_last_scan_timestamp_seconds gauge",
            f"feedsvc_last_scan_timestamp_seconds {state.finished_at.timestamp():.3f}",
            "# HELP feedsvc_last_scan_duration_seconds How long the last scan took.",
            "# TYPE feedsvc_last_scan_duration_seconds gauge",
            f"feedsvc_last_scan_duration_seconds {r.duration_ms / 1000:.3f}",
            "# HELP feedsvc_last_scan_files Files by outcome in the last scan.",
            "# TYPE feedsvc_last_scan_files gauge",
        ]
        for outcome, n in (
            ("added", r.added),
            ("updated", r.updated),
            ("removed", r.removed),
            ("unchanged", r.unchanged),
            ("failed", len(r.errors)),
        ):
            lines.append(f'feedsvc_last_scan_files{{outcome="{outcome}"}} {n}')
    if svc.settings.websub.hub or svc.settings.websub.hubs:
        # The store is down: the hub's figures come back with it.
        with contextlib.suppress(StoreError):
            lines += hub_metric_lines(svc)
    return Response(
        "\n".join(lines) + "\n", 200, content_type="text/plain; version=0.0.4; charset=utf-8"
    )
