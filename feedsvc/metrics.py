"""Counters and histograms of this deployment, with prometheus_client; owns no HTTP.

Owns what is counted in-process (requests by route and status, request and
scan durations) and how the counts of several processes become one answer.
Figures read from the store (items, feeds, last scan) are not here: they are
the same whichever process answers (``web/api.py``).

Under ``feedsvc serve`` every worker, and the watcher beside them, is a process
of its own. ``serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder
before any of them starts (``prepare_multiprocess_dir``); prometheus_client
then keeps each process's values in a file there, and a scrape answered by any
worker adds up every file, those of workers that have stopped included. So
one scrape gives totals for the whole deployment, and scrapes never disagree.
Without the variable (tests, ``feedsvc build``) values stay in the process.

prometheus_client picks its value store when it is first imported, so the
variable must be set before then: this module imports it lazily, and
``serve`` sets the variable before importing anything that uses it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric
    from prometheus_client.registry import Collector

    from feedsvc.types import ScanReport

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUESTS = "feedsvc_http_requests"  # exposed as feedsvc_http_requests_total
FEED_ROUTE_PREFIX = "/feeds/<"
# Answers are a lookup (about 0.1 ms) or a render (tens of ms); a scan is
# milliseconds when nothing changed, minutes for a first scan of a big folder.
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
SCAN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


def prepare_multiprocess_dir() -> Path:
    """A fresh, empty folder for this deployment's values, named in the environment.

    An operator's own ``PROMETHEUS_MULTIPROC_DIR`` is used (emptied of an
    earlier run's files, which would count again); otherwise a new private
    folder is made. Call it in ``serve``'s main process before any worker or
    watcher starts; ``remove_multiprocess_dir`` at exit.
    """
    given = os.environ.get(MULTIPROC_ENV)
    if given:
        folder = Path(given)
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder = Path(tempfile.mkdtemp(prefix="feedsvc-metrics-"))
        os.environ[MULTIPROC_ENV] = str(folder)
    return folder


def remove_multiprocess_dir(folder: Path) -> None:
    """After the deployment stopped: the folder ``prepare_multiprocess_dir`` made."""
    if folder.name.startswith("feedsvc-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)
    os.environ.pop(MULTIPROC_ENV, None)


def mark_process_dead(pid: int) -> None:
    """A worker ended: prometheus_client drops its live gauges (its counts stay)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Metrics:
    """Request and scan figures of this process, and the deployment's totals in ``page()``."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        # Not the library's global registry: every app (tests build many) has its own.
        self._own = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            REQUESTS,
            "HTTP requests answered by this deployment, by route pattern and status.",
            ["route", "status"],
            registry=self._own,
        )
        self._request_seconds = Histogram(
            "feedsvc_http_request_duration_seconds",
            "Time to answer an HTTP request, by route pattern.",
            ["route"],
            buckets=REQUEST_BUCKETS,
            registry=self._own,
        )
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._scan_seconds = Histogram(
            "feedsvc_scan_duration_seconds",
            "How long scans of this deployment took (watcher and refreshes).",
            buckets=SCAN_BUCKETS,
            registry=self._own,
        )

    def request(self, route: str, status: int, seconds: float) -> None:
        # The labelled children are looked up once (``labels()`` costs as much
        # as the counting): routes and statuses are few.
        counters = self._children.get((route, status))
        if counters is None:
            counters = (
                self._requests.labels(route, str(status)),
                self._request_seconds.labels(route),
            )
            self._children[(route, status)] = counters
        counters[0].inc()
        counters[1].observe(seconds)

    def scan_report(self, report: ScanReport) -> None:
        """A scan this process ran (``Scanner(on_report=...)``)."""
        self._scan_seconds.observe(report.duration_ms / 1000)

    def page(self, *figures: Collector) -> str:
        """The ``/metrics`` page (Prometheus text): the deployment's totals, the 304 share
        of feed requests, then ``figures``, collectors of what the store says."""
        from prometheus_client import CollectorRegistry, generate_latest

        # auto_describe off: a collector is registered without being run first.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Deployment(self._scrape_registry()))
        for collector in figures:
            registry.register(collector)
        text = generate_latest(registry).decode("utf-8")
        # Creation times differ per process and say nothing about the deployment.
        return "".join(line + "\n" for line in text.splitlines() if not _is_created(line))

    def _scrape_registry(self) -> CollectorRegistry:
        folder = os.environ.get(MULTIPROC_ENV)
        if not folder:
            return self._own
        from prometheus_client import CollectorRegistry, multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=folder)  # type: ignore[no-untyped-call]
        return registry


class _Deployment:
    """The counted families of this deployment, and the share of feed requests answered 304."""

    def __init__(self, counted: CollectorRegistry) -> None:
        self._counted = counted

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        families = list(self._counted.collect())
        feed_total = feed_304 = 0.0
        for name, labels, value in _samples(families):
            if name == REQUESTS + "_total" and labels.get("route", "").startswith(
                FEED_ROUTE_PREFIX
            ):
                feed_total += value
                feed_304 += value if labels.get("status") == "304" else 0
        yield from families
        yield GaugeMetricFamily(
            "feedsvc_feed_not_modified_ratio",
            "Share of feed requests answered 304.",
            value=feed_304 / feed_total if feed_total else 0.0,
        )


def _is_created(line: str) -> bool:
    name = line.split(" ", 3)[2] if line.startswith("#") else line.partition("{")[0]
    return name.partition(" ")[0].endswith("_created")


def _samples(families: Iterable[Any]) -> Iterable[tuple[str, dict[str, str], float]]:
    for family in families:
        for sample in family.samples:
            yield sample.name, sample.labels, sample.value
