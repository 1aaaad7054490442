"""``POST /websub``: the built-in hub's subscription endpoint (WebSub §5.1).

Owns the HTTP side only: a bounded form-encoded body, the answer (202 Accepted
when the request is queued, 4xx with a reason otherwise). The decision is
``websub.subscribe``; the verification of intent (§5.3) and everything sent
to subscribers happen later, in the watcher process (``websub.dispatch``),
so a web worker never waits on a stranger's server.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

from flask import Blueprint, Response, abort, request

from feedsvc.publish import HUB_PATH, feed_at, hub_urls
from feedsvc.store.hub import DELIVER, LATENCY_BUCKETS, PUBLISH, VERIFY
from feedsvc.web.services import Services, services
from feedsvc.websub.subscribe import RequestRefused, read_request

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

    from feedsvc.store.hub import HubStats

log = logging.getLogger(__name__)
bp = Blueprint("websub", __name__)

# A request is four short fields: 8 KiB is far more than any honest one needs.
MAX_REQUEST_BYTES = 8 * 1024


def _text(message: str, status: int) -> Response:
    return Response(message + "\n", status, content_type="text/plain; charset=utf-8")


@bp.post(HUB_PATH)
def hub() -> Response:
    svc = services()
    if not svc.settings.websub.hub:
        abort(404)
    if request.content_length is None or request.content_length > MAX_REQUEST_BYTES:
        return _text(f"the request body must be given and under {MAX_REQUEST_BYTES} bytes", 413)
    if request.mimetype != "application/x-www-form-urlencoded":
        return _text("send hub.* fields as application/x-www-form-urlencoded (WebSub §5.1)", 415)

    def topic_exists(topic: str) -> bool:
        found = feed_at(svc.settings, topic)
        return found is not None and svc.feeds.get(found[0], found[1].name) is not None

    try:
        intent = read_request(request.form, svc.settings.websub, topic_exists)
    except RequestRefused as exc:
        return _text(exc.reason, exc.status)
    queued = svc.store.hub().request(
        intent, now=svc.clock(), per_host=svc.settings.websub.max_subscriptions_per_host
    )
    if not queued:
        return _text(
            f"{intent.callback_host} holds the most subscriptions one callback host may have",
            429,
        )
    log.info("websub: %s request for %s queued for verification", intent.mode, intent.topic)
    # §5.1.2 / §5.3: accepted; the subscriber hears of the outcome through its callback.
    return _text("accepted: the hub will verify this request with the callback", 202)


def hub_status(svc: Services) -> dict[str, object]:
    """The hub in ``/api/status``: subscriptions, and deliveries pending or failing."""
    stats = svc.store.hub().stats(svc.clock())
    counted = stats.counters

    def jobs(kind: str, *states: str) -> int:
        return sum(stats.jobs.get((kind, state), 0) for state in states)

    def total(name: str) -> int:
        return int(counted.get(name, 0))

    return {
        "hubs": list(hub_urls(svc.settings)),
        "subscriptions": stats.subscriptions,
        "subscriptions_by_topic": dict(stats.subscriptions_by_topic),
        "pending_verifications": jobs(VERIFY, "due", "in_flight", "retrying"),
        "pending_deliveries": jobs(DELIVER, "due", "in_flight"),
        "failing_deliveries": jobs(DELIVER, "retrying"),
        "pending_publishes": jobs(PUBLISH, "due", "in_flight", "retrying"),
        "delivered_total": total("deliveries_ok"),
        "failed_deliveries_total": total("deliveries_failed"),
        "dropped_subscriptions_total": total("subscriptions_dropped"),
        "expired_subscriptions_total": total("subscriptions_expired"),
        "refused_callbacks_total": total("callbacks_refused"),
    }


# The hub's counters in /metrics: (name, help, label, ((label value, counter key), ...));
# each name gains "_total".
_COUNTERS = (
    (
        "deliveries",
        "Content distributions to subscribers.",
        "outcome",
        (("ok", "deliveries_ok"), ("failed", "deliveries_failed")),
    ),
    (
        "verifications",
        "Verifications of intent.",
        "outcome",
        (("confirmed", "verifications_confirmed"), ("failed", "verifications_failed")),
    ),
    (
        "publishes",
        "Pings of external hubs.",
        "outcome",
        (("ok", "publishes_ok"), ("failed", "publishes_failed")),
    ),
    (
        "subscriptions_ended",
        "Subscriptions ended by the hub.",
        "reason",
        (("dropped", "subscriptions_dropped"), ("expired", "subscriptions_expired")),
    ),
    (
        "callbacks_refused",
        "Callbacks refused for their address.",
        "",
        (("", "callbacks_refused"),),
    ),
)


def hub_figures(svc: Services) -> Collector:
    """The hub in ``/metrics``, from the store (the same in every worker), read now.

    Raises ``StoreError`` when the store cannot be read.
    """
    return _HubFigures(svc.store.hub().stats(svc.clock()))


class _HubFigures:
    def __init__(self, stats: HubStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        # Imported here: prometheus_client must first see what ``serve`` sets up (metrics.py).
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        stats = self._stats
        counted = stats.counters
        yield GaugeMetricFamily(
            "feedsvc_websub_subscriptions",
            "Live WebSub subscriptions of the built-in hub.",
            value=stats.subscriptions,
        )
        jobs = GaugeMetricFamily(
            "feedsvc_websub_jobs", "Hub jobs queued, by kind and state.", labels=["kind", "state"]
        )
        for kind in (VERIFY, DELIVER, PUBLISH):
            for state in ("due", "in_flight", "retrying"):
                jobs.add_metric([kind, state], stats.jobs.get((kind, state), 0))
        yield jobs
        for name, help_text, label, values in _COUNTERS:
            counter = CounterMetricFamily(
                f"feedsvc_websub_{name}", help_text, labels=[label] if label else None
            )
            for value, key in values:
                counter.add_metric([value] if label else [], int(counted.get(key, 0)))
            yield counter
        count = int(counted.get("latency_count", 0))
        buckets = [(f"{le:g}", int(counted.get(f"latency_le_{le:g}", 0))) for le in LATENCY_BUCKETS]
        yield HistogramMetricFamily(
            "feedsvc_websub_delivery_latency_seconds",
            "From a feed change being noticed to its delivery to a subscriber.",
            buckets=[*buckets, ("+Inf", count)],
            sum_value=float(counted.get("latency_sum", 0.0)),
        )
