"""Ingest figures, each measured in a fresh child process (for a clean peak RSS).

``python -m bench.ingest cold|rescan|change CONTENT STORE_URL`` prints one JSON line.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from feedsvc.pipeline import scan
from feedsvc.publish import FeedCache
from feedsvc.settings import Settings, load_settings
from feedsvc.store import open_store


def bench_env(content: Path, store_url: str, **extra: str) -> dict[str, str]:
    """``FEEDSVC_*`` variables of the benchmark site (no config file)."""
    return {
        "FEEDSVC_CONFIG": "/dev/null",
        "FEEDSVC_CONTENT_PATH": str(content),
        "FEEDSVC_STORE_URL": store_url,
        "FEEDSVC_SITE_BASE_URL": "https://news.example.com",
        "FEEDSVC_SITE_ID_PREFIX": "tag:news.example.com,2024:",
        **{f"FEEDSVC_{key.upper()}": value for key, value in extra.items()},
    }


def bench_settings(content: Path, store_url: str) -> Settings:
    return load_settings(None, environ=bench_env(content, store_url))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> None:
    mode, content, store_url = argv[0], Path(argv[1]), argv[2]
    settings = bench_settings(content, store_url)
    base_mb = _peak_mb()
    store = open_store(settings.store.url)
    started = time.perf_counter()
    report = scan(settings, store, now=datetime.now(UTC))
    scanned = time.perf_counter()
    feeds = 0
    if mode == "cold":
        for _ in FeedCache(settings, store).all_feeds():
            feeds += 1
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "mode": mode,
                "scan_s": scanned - started,
                "render_s": done - scanned,
                "total_s": done - started,
                "added": report.added,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "errors": len(report.errors),
                "feeds": feeds,
                "peak_mb": _peak_mb(),
                "import_peak_mb": base_mb,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
