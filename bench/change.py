"""One file changed among N: from the edit to the new title in /feeds/all/all.rss.

Starts ``feedsvc serve --no-watch`` (the production server) on the stored
corpus, edits one file's title, POSTs /api/refresh and polls the feed until
the new title is there. Reports the median of ``runs`` edits.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.ingest import bench_env

TOKEN = "bench-token"  # a throwaway token for a local benchmark server


def _start(content: Path, db: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = {
        **os.environ,
        **bench_env(
            content,
            f"sqlite:///{db}",
            server_refresh_token=TOKEN,
            server_workers=str(os.cpu_count() or 2),
            # The file is read by the refresh right after the edit: with the
            # default settle time it would be left pending (docs/operations.md).
            content_settle_seconds="0",
        ),
    }
    cmd = [sys.executable, "-m", "feedsvc", "serve", "--port", "0", "--no-watch"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        m = re.search(r"Listening at: (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not start; see {log}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=30)


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as r:
        body: bytes = r.read()
        return body


def _refresh(base: str) -> dict[str, Any]:
    req = urllib.request.Request(
        base + "/api/refresh", method="POST", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(req, timeout=600) as r:
        report: dict[str, Any] = json.loads(r.read())
        return report


def measure(content: Path, db: Path, runs: int, work: Path) -> dict[str, Any]:
    target = sorted(content.rglob("*_fm.txt"))[-1]  # a front-matter file
    original = target.read_text(encoding="utf-8")
    proc, base = _start(content, db, work / "change-server.log")
    refresh_s: list[float] = []
    visible_s: list[float] = []
    scan_ms: list[float] = []
    try:
        _refresh(base)  # settle: the store matches the folder before timing
        _get(base + "/feeds/all/all.rss")
        for r in range(runs):
            marker = f"BENCH-CHANGED-{time.time_ns()}-{r}"
            text = re.sub(r"^title: .*$", f"title: {marker}", original, count=1, flags=re.M)
            # Newest date, so the item is first in /feeds/all/all.rss; not in the
            # future, where it would be scheduled, not listed (docs/dates.md).
            newest = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
            text = re.sub(r"^date: .*$", f"date: {newest}", text, count=1, flags=re.M)
            target.write_text(text, encoding="utf-8")
            t0 = time.perf_counter()
            report = _refresh(base)
            t1 = time.perf_counter()
            while marker.encode() not in _get(base + "/feeds/all/all.rss"):
                if time.perf_counter() - t0 > 60:
                    raise RuntimeError("the change never reached the feed")
            t2 = time.perf_counter()
            refresh_s.append(t1 - t0)
            visible_s.append(t2 - t0)
            scan_ms.append(float(report["duration_ms"]))
    finally:
        target.write_text(original, encoding="utf-8")
        try:
            _refresh(base)
        finally:
            _stop(proc)
    return {
        "files": sum(1 for p in content.rglob("*.txt")),
        "refresh_s": statistics.median(refresh_s),
        "visible_s": statistics.median(visible_s),
        "scan_ms": statistics.median(scan_ms),
    }
