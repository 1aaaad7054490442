"""The parse pool's processes: forked from a warm fork server, gone when the scan is done.

A pooled scan (large cold scans, ``pipeline.POOL_MIN_FILES``) forks its workers
from multiprocessing's fork server, which has imported ``feedsvc.preload``
(every module and the language models). What users notice: the same items as a
serial scan (tests/test_ingest.py) and no process left behind once the scan
returns, in the scanning process or anywhere (tests/test_orphans.py for kill -9).
"""

from __future__ import annotations

import multiprocessing.forkserver
import os
from datetime import UTC, datetime
from pathlib import Path

from conftest import child_pids

from feedsvc.pipeline import scan
from feedsvc.store import open_store

NOW = datetime(2025, 1, 2, tzinfo=UTC)


def test_a_pooled_scan_leaves_no_process_behind(
    tmp_path: Path, content_dir: Path, make_settings
) -> None:
    for i in range(40):
        (content_dir / f"p{i:03d}.md").write_text(
            f"---\ntitle: Story {i}\ndate: 2025-01-01\n---\nBody of story number {i}.\n", "utf-8"
        )
    before = child_pids(os.getpid())
    settings = make_settings(content_dir, f"sqlite:///{tmp_path / 'pool.db'}")
    store = open_store(settings.store.url)
    try:
        report = scan(settings, store, now=NOW, workers=2)
    finally:
        store.close()
    assert report.added >= 40 and not report.errors
    # The fork server (with its 200 MB of language models) ended with the pool;
    # multiprocessing's resource tracker, if this scan started it, may stay.
    left = {
        pid
        for pid in child_pids(os.getpid()) - before
        if b"forkserver" in Path(f"/proc/{pid}/cmdline").read_bytes()
    }
    assert left == set()


def test_the_fork_server_can_still_be_stopped() -> None:
    """feedsvc.fileread stops the fork server through ``ForkServer._stop``, the
    method multiprocessing's own tests use: this fails if a Python release drops it."""
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    assert callable(getattr(server, "_stop", None))
