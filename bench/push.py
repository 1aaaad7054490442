"""Push latency: from a file closed in the content folder to a WebSub subscriber's receipt.

Starts ``feedsvc serve`` (production server, its watcher and the built-in hub) on a
copy of the stored corpus, subscribes a minimal WebSub subscriber (in this process,
on 127.0.0.1) to ``/feeds/all/all.atom``, then writes ``--changes`` new stories one
after another. Each latency is the time from ``close()`` of the new file to the
subscriber receiving an Atom document that contains it. No refresh call is made.

Next to it, the polling baseline a reader gets without push: the change waits for
the next scheduled rescan (``watch.interval_seconds``) and then for the reader's
cached copy to expire (``Cache-Control: max-age=feeds.cache_seconds``). With a
change at a uniformly random moment of both cycles its latency is the sum of two
uniform waits: median = (interval + cache) / 2 and p99 from the same distribution
(computed exactly below, not measured: 50 changes would take hours).

    .venv/bin/python -m bench.push --files 1000 --changes 50
    .venv/bin/python -m bench.push --files 50000 --changes 50 --settle 0
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from bench.ingest import bench_env
from bench.run import ensure_corpus


class Subscriber:
    """A minimal WebSub subscriber: echoes challenges, records each delivery's arrival."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[float, bytes]] = []
        self.confirmed = threading.Event()
        self.cond = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                challenge = query.get("hub.challenge", [""])[0].encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(challenge)))
                self.end_headers()
                self.wfile.write(challenge)
                outer.confirmed.set()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                arrived = time.time()
                self.send_response(204)
                self.end_headers()
                with outer.cond:
                    outer.deliveries.append((arrived, body))
                    outer.cond.notify_all()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/cb"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, marker: bytes, timeout: float) -> float | None:
        """Arrival time of the first delivery containing ``marker``."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for arrived, body in self.deliveries:
                    if marker in body:
                        return arrived
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self.cond.wait(remaining)


def _reserve_port() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_log(log: Path, pattern: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, log.read_text(errors="replace")):
            return
        time.sleep(0.1)
    raise RuntimeError(f"no {pattern!r} in {log} within {timeout} s")


def polling_baseline(interval: float, cache: float) -> dict[str, float]:
    """Median and p99 of U(0, interval) + U(0, cache): the wait of a polling reader."""
    lo, hi = sorted((interval, cache))

    def cdf(t: float) -> float:  # the sum of two uniforms: a trapezoid
        if t <= lo:
            return t * t / (2 * lo * hi)
        if t <= hi:
            return (t - lo / 2) / hi
        rest = lo + hi - t
        return 1 - rest * rest / (2 * lo * hi)

    def quantile(q: float) -> float:
        a, b = 0.0, lo + hi
        for _ in range(100):
            mid = (a + b) / 2
            a, b = (mid, b) if cdf(mid) < q else (a, mid)
        return (a + b) / 2

    return {"median_s": quantile(0.5), "p99_s": quantile(0.99), "worst_s": lo + hi}


def measure(files: int, changes: int, settle: int, seed: int) -> dict[str, Any]:  # noqa: PLR0915 - one measurement read top to bottom: start, subscribe, write, time, stop
    corpus = ensure_corpus(files, seed)
    work = Path(tempfile.mkdtemp(prefix="feedsvc-push-"))
    content = work / "content"
    shutil.copytree(corpus, content, ignore=shutil.ignore_patterns(".complete"))
    reserved = _reserve_port()
    port = reserved.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **bench_env(
            content,
            f"sqlite:///{work / 'store.sqlite3'}",
            site_base_url=base,
            websub_allow_loopback="true",
            content_settle_seconds=str(settle),
            server_workers="2",
        ),
    }
    log = work / "serve.log"
    cmd = [sys.executable, "-m", "feedsvc", "serve", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    subscriber = Subscriber()
    latencies: list[float] = []
    missed = 0
    try:
        started = time.monotonic()
        _wait_log(log, r"scan finished", 1800)
        cold_scan_s = time.monotonic() - started
        _wait_log(log, r"websub: hub dispatcher on", 60)
        form = urlencode(
            {
                "hub.mode": "subscribe",
                "hub.topic": base + "/feeds/all/all.atom",
                "hub.callback": subscriber.url,
            }
        ).encode()
        request = urllib.request.Request(base + "/websub", data=form, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            assert answer.status == 202
        if not subscriber.confirmed.wait(60):
            raise RuntimeError("the hub never verified the subscription")
        _wait_status(base, lambda s: s["websub"]["subscriptions"] == 1)
        story_dir = content / "push-bench"
        story_dir.mkdir()
        for i in range(changes):
            marker = f"pushed story {i:03d} {os.getpid()}"
            path = story_dir / f"story-{i:03d}.md"
            with open(path, "w", encoding="utf-8") as f:
                f.write(
                    # No date: published is the file's time, so it tops /feeds/all/all.atom.
                    f"---\ntitle: '{marker}'\nlang: en\n---\nStory {i} of the push benchmark.\n"
                )
            closed = time.time()
            arrived = subscriber.wait_for(marker.encode(), timeout=60)
            if arrived is None:
                missed += 1
                continue
            latencies.append(arrived - closed)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        reserved.close()
        subscriber.server.shutdown()
        # Where the time goes: the scans the file events brought, as the watcher logged them.
        scans = [
            int(ms)
            for ms in re.findall(
                r"scan after file events: .* in (\d+) ms", log.read_text(errors="replace")
            )
        ]
        shutil.rmtree(work, ignore_errors=True)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
    return {
        "files": files,
        "changes": changes,
        "received": len(latencies),
        "missed": missed,
        "settle_seconds": settle,
        "cold_scan_s": round(cold_scan_s, 1),
        "median_s": round(statistics.median(latencies), 3),
        "p99_s": round(p99, 3),
        "max_s": round(latencies[-1], 3),
        "event_scans": len(scans),
        "event_scan_median_ms": statistics.median(scans) if scans else None,
    }


def _wait_status(base: str, ok: Any) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with urllib.request.urlopen(base + "/api/status", timeout=30) as answer:
            if ok(json.load(answer)):
                return
        time.sleep(0.1)
    raise RuntimeError("status never reached the expected state")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 50000])
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--settle", type=int, default=0, help="content.settle_seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    # The defaults of watch.interval_seconds and feeds.cache_seconds.
    baseline = polling_baseline(300, 300)
    rows = [measure(n, args.changes, args.settle, args.seed) for n in args.files]
    print(json.dumps({"push": rows, "polling_baseline": baseline}, indent=2))
    print()
    print(
        "| files | changes | received | settle s | push median | push p99 | push max "
        "| scan after events (median) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {r['files']:,} | {r['changes']} | {r['received']} | {r['settle_seconds']} "
            f"| {r['median_s']:.3f} s | {r['p99_s']:.3f} s | {r['max_s']:.3f} s "
            f"| {r['event_scan_median_ms']} ms |"
        )
    median, p99, worst = (round(baseline[k]) for k in ("median_s", "p99_s", "worst_s"))
    print(
        "\npolling baseline (interval 300 s + Cache-Control max-age 300 s): "
        f"median {median} s, p99 {p99} s, worst {worst} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
