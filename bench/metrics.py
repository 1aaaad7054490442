"""The cost of counting a request: ``python -m bench.metrics [--requests 20000] [--runs 5]``.

A cached feed request (``/feeds/all/all.rss`` with ``If-None-Match``: the
304 aggregators poll for) through the app's WSGI stack in this process, as a
worker serves it, measured three ways in the same run:

- ``none``: the metrics calls replaced by nothing (the peer);
- ``in-process``: prometheus_client keeping values in memory (tests, ``build``);
- ``multiprocess``: values in files under ``PROMETHEUS_MULTIPROC_DIR``, as
  under ``feedsvc serve``, each mode in a fresh interpreter (prometheus_client
  picks its value store when first imported).

Prints a Markdown table: microseconds per request (median of ``--runs``) and
the ratio to the peer. Writes nothing but a store under ``bench/work/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
WORK = HERE / "work" / "metrics"
SAMPLES = HERE.parent / "content"
MODES = ("none", "in-process", "multiprocess")


def _measure(mode: str, requests: int, runs: int) -> list[float]:
    """In this interpreter: µs per cached feed request, one figure per run."""
    from feedsvc.scanner import Scanner
    from feedsvc.settings import load_settings
    from feedsvc.store import open_store
    from feedsvc.web import create_app

    env = {
        "FEEDSVC_CONFIG": os.devnull,
        "FEEDSVC_CONTENT_PATH": str(SAMPLES),
        "FEEDSVC_STORE_URL": f"sqlite:///{WORK / 'store.sqlite3'}",
        "FEEDSVC_SITE_BASE_URL": "https://news.example.com",
    }
    settings = load_settings(None, environ=env)
    store = open_store(settings.store.url)
    Scanner(settings, store, _now).run()
    app = create_app(settings, store=store, clock=_now)
    if mode == "none":
        metrics = app.extensions["feedsvc"].metrics
        metrics.request = lambda route, status, seconds: None
    from werkzeug.test import EnvironBuilder

    etag = app.test_client().get("/feeds/all/all.rss").headers["ETag"]
    headers = {"If-None-Match": etag, "Accept-Encoding": "gzip"}
    environ = EnvironBuilder("/feeds/all/all.rss", headers=headers).get_environ()
    statuses: list[str] = []

    def start_response(status: str, _headers: object, _exc: object = None) -> None:
        statuses.append(status)

    figures = []
    for _ in range(runs):
        started = time.perf_counter()
        for _ in range(requests):  # as a worker calls the app: WSGI, no HTTP client
            b"".join(app(dict(environ), start_response))
        figures.append((time.perf_counter() - started) / requests * 1e6)
    assert set(statuses) == {"304 NOT MODIFIED"} or all(s.startswith("304") for s in statuses)
    store.close()
    return figures


def _now():  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    return datetime(2026, 1, 1, tzinfo=UTC)


def _child(mode: str, child_args: list[str]) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    folder = None
    if mode == "multiprocess":
        folder = tempfile.mkdtemp(prefix="feedsvc-bench-metrics-")
        env["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        out = subprocess.run(
            [*(sys.executable, "-m", "bench.metrics", "--mode", mode), *child_args],
            env=env,
            cwd=HERE.parent,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    finally:
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
    found: list[float] = json.loads(out.strip().splitlines()[-1])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one child's mode
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(_measure(args.mode, args.requests, args.runs)))
        return
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    # Modes take turns, one run each, so a machine whose load changes meanwhile
    # weighs on all three alike; the figure is each mode's median.
    figures: dict[str, list[float]] = {mode: [] for mode in MODES}
    child_args = ["--requests", str(args.requests), "--runs", "1"]
    for _ in range(args.runs):
        for mode in MODES:
            figures[mode] += _child(mode, child_args)
    results = {mode: statistics.median(values) for mode, values in figures.items()}
    peer = results["none"]
    print("| metrics | µs per cached feed request (304) | ratio to none |")
    print("| --- | --- | --- |")
    for mode in MODES:
        print(f"| {mode} | {results[mode]:.1f} | {results[mode] / peer:.2f} |")


if __name__ == "__main__":
    main()
