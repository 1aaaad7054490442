"""Ingest figures, each measured in a fresh child process (for a clean peak RSS).

``python -m bench.ingest cold|memory|rescan CONTENT STORE_URL`` prints one JSON line:
times, the process's own peak RSS and, for ``memory``, the peak of the whole process
tree (the scan's pool processes included).

``cold`` and ``memory`` do the same work: a cold scan plus every feed. Only
``memory`` samples the process tree, because the sampling is not free: it reads
each process's ``smaps_rollup`` every 20 ms, about 1 ms of kernel time per
read, and it slowed a 10,000-file cold scan by 0.3-0.4 s. The peers are timed
without it, so ``cold`` is too.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from feedsvc.discover import Listings
from feedsvc.feed_cache import FeedCache
from feedsvc.pipeline import scan
from feedsvc.settings import Settings, load_settings
from feedsvc.store import Store, open_store


def bench_env(content: Path, store_url: str, **extra: str) -> dict[str, str]:
    """``FEEDSVC_*`` variables of the benchmark site (no config file)."""
    return {
        "FEEDSVC_CONFIG": "/dev/null",
        "FEEDSVC_CONTENT_PATH": str(content),
        "FEEDSVC_STORE_URL": store_url,
        "FEEDSVC_SITE_BASE_URL": "https://news.example.com",
        "FEEDSVC_SITE_ID_PREFIX": "tag:news.example.com,2024:",
        # A corpus written a moment ago is read at once, not left for a later scan.
        "FEEDSVC_CONTENT_SETTLE_SECONDS": "0",
        **{f"FEEDSVC_{key.upper()}": value for key, value in extra.items()},
    }


def bench_settings(content: Path, store_url: str) -> Settings:
    return load_settings(None, environ=bench_env(content, store_url))


def _peak_mb() -> float:
    """This process's peak RSS: the high-water mark of its own memory (VmHWM).

    Not ``ru_maxrss``: on Linux that starts at the parent's RSS at the fork and
    survives the exec, so a harness holding a 50,000-file corpus in memory
    made every measured child look 340 MB big.
    """
    try:
        return _kb_field("/proc/self/status", "VmHWM:") / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tree_mb(pid: int) -> tuple[float, float]:
    """(RSS, PSS) of ``pid`` plus all its descendants now (a scan's pool processes count).

    The sum of RSS counts a page shared by several processes (the language
    models a fork server's workers share) once per process; PSS divides it
    among them, so the sum of PSS is what the tree really holds.
    """
    rss = pss = 0.0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            rss += _kb_field(f"/proc/{current}/status", "VmRSS:") / 1024
            pss += _kb_field(f"/proc/{current}/smaps_rollup", "Pss:") / 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as f:
                    todo += [int(kid) for kid in f.read().split()]
        except (OSError, ValueError):
            continue  # a child that just exited
    return rss, pss


def _kb_field(path: str, name: str) -> int:
    with open(path, encoding="ascii") as f:
        for line in f:
            if line.startswith(name):
                return int(line.split()[1])
    return 0


class TreePeak:
    """Samples the RSS and PSS of this process and its children every 20 ms; keeps the peaks.

    ``ru_maxrss`` of RUSAGE_CHILDREN is the largest child, not the sum, so the
    sum of the process tree is sampled instead (a short spike between two
    samples can be missed: the figure is a lower bound, never an overstatement).
    """

    def __init__(self, *, sample: bool = True) -> None:
        self.peak_mb = 0.0
        self.peak_pss_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True) if sample else None

    def __enter__(self) -> TreePeak:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss, pss = _tree_mb(os.getpid())
            self.peak_mb = max(self.peak_mb, rss)
            self.peak_pss_mb = max(self.peak_pss_mb, pss)
            self._stop.wait(0.02)


def _timed_scan(settings: Settings, store: Store, listings: Listings) -> float:
    started = time.perf_counter()
    scan(settings, store, now=datetime.now(UTC), listings=listings)
    return time.perf_counter() - started


def main(argv: list[str]) -> None:
    mode, content, store_url = argv[0], Path(argv[1]), argv[2]
    settings = bench_settings(content, store_url)
    base_mb = _peak_mb()
    store = open_store(settings.store.url)
    with TreePeak(sample=mode == "memory") as tree:
        started = time.perf_counter()
        report = scan(settings, store, now=datetime.now(UTC))
        scanned = time.perf_counter()
        feeds = 0
        if mode in ("cold", "memory"):
            for _ in FeedCache(settings, store).all_feeds():
                feeds += 1
        done = time.perf_counter()
    # The watcher's steady state: more rescans in the same process, which keeps
    # the file states it read and its folder listings (a fresh process must
    # read them all). Timed after the RSS sampler stopped: its thread would
    # take turns on the interpreter with the scan.
    listings = Listings()
    warm = (
        [_timed_scan(settings, store, listings) for _ in range(4)][1:] if mode == "rescan" else []
    )
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "mode": mode,
                "scan_s": scanned - started,
                "warm_scan_s": sorted(warm)[len(warm) // 2] if warm else None,
                "render_s": done - scanned,
                "total_s": done - started,
                "added": report.added,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "errors": len(report.errors),
                "feeds": feeds,
                "peak_mb": _peak_mb(),
                # Sum over the process tree (pool processes included), sampled.
                "peak_tree_mb": max(tree.peak_mb, _peak_mb()),
                "peak_tree_pss_mb": tree.peak_pss_mb,
                "largest_child_peak_mb": children_mb,
                "import_peak_mb": base_mb,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
