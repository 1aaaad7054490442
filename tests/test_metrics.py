"""/metrics of a real ``feedsvc serve`` with two workers: totals for the whole deployment."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import RunningServer, child_pids, feedsvc_env, metric_samples

TOKEN = "metrics-refresh-token"
FEED_ROUTE = "/feeds/<language>/<name>"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return metric_samples(requests.get(url + "/metrics", timeout=30).text)


def value(sample: dict, name: str, **labels: str) -> float:
    return sample.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def server(tmp_path: Path, content_dir: Path) -> Iterator[tuple[RunningServer, Path]]:
    folder = tmp_path / "metrics"
    folder.mkdir()
    # Left by an earlier run: must not count again.
    (folder / "counter_999999.db").write_bytes(b"not from this deployment")
    env = {
        **os.environ,
        **feedsvc_env(tmp_path, content_dir, server_workers="2", server_refresh_token=TOKEN),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
    }
    running = RunningServer([], env, tmp_path)
    try:
        yield running, folder
    finally:
        running.stop()


def test_scrapes_agree_and_add_up_across_workers(server: tuple[RunningServer, Path]) -> None:
    running, folder = server
    running.wait_for_log(r"scan: 2 added")  # the watcher's first scan, in its own process
    assert not (folder / "counter_999999.db").exists()

    # New connections, so the kernel spreads them over both workers.
    for _ in range(40):
        assert requests.get(running.url + "/feeds/all/all.rss", timeout=30).status_code == 200
    etag = requests.get(running.url + "/feeds/all/all.atom", timeout=30).headers["ETag"]
    for _ in range(10):
        answer = requests.get(
            running.url + "/feeds/all/all.atom", headers={"If-None-Match": etag}, timeout=30
        )
        assert answer.status_code == 304
    for _ in range(5):
        assert requests.get(running.url + "/healthz", timeout=30).status_code == 200

    # Both workers counted some (each writes its own file, named by its pid).
    counted = {
        int(m.group(1)) for p in folder.iterdir() if (m := re.match(r"counter_(\d+)", p.name))
    }
    workers = child_pids(running.proc.pid)
    assert len(counted & workers) == 2, (counted, workers)

    scrapes = [scrape(running.url) for _ in range(8)]
    for sample in scrapes:
        total = "feedsvc_http_requests_total"
        assert value(sample, total, route=FEED_ROUTE, status="200") == 41
        assert value(sample, total, route=FEED_ROUTE, status="304") == 10
        assert value(sample, total, route="/healthz", status="200") >= 5  # +1 readiness check
        hist = "feedsvc_http_request_duration_seconds_count"
        assert value(sample, hist, route=FEED_ROUTE) == 51
        assert value(sample, "feedsvc_feed_not_modified_ratio") == pytest.approx(10 / 51, abs=1e-6)
        assert value(sample, "feedsvc_scan_duration_seconds_count") == 1
        assert value(sample, "feedsvc_scans_total") == 1
        assert value(sample, "feedsvc_items", language="all") == 2
    # The only thing that moves between scrapes is the count of scrapes.
    metrics_route = [
        value(s, "feedsvc_http_requests_total", route="/metrics", status="200") for s in scrapes
    ]
    assert metrics_route == list(range(int(metrics_route[0]), int(metrics_route[0]) + 8))


def test_a_refresh_in_a_worker_is_a_scan_of_the_deployment(
    server: tuple[RunningServer, Path],
) -> None:
    running, _ = server
    running.wait_for_log(r"scan: 2 added")
    answer = requests.post(
        running.url + "/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    assert answer.status_code == 200, answer.text
    # Recorded before the refresh answered: whichever worker answers sees two scans.
    sample = scrape(running.url)
    assert value(sample, "feedsvc_scan_duration_seconds_count") == 2
    assert value(sample, "feedsvc_scans_total") == 2
    assert value(sample, "feedsvc_scan_duration_seconds_sum") > 0
