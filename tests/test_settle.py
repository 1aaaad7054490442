"""Settled files only (issue #13, point 6): a file still being written is pending, never published.

A file whose size or modification time changed within ``content.settle_seconds``
of the scan, or that changes while it is read, is left for the next scan,
reported under ``pending`` (not as an error), and its last good version stays.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from conftest import write_in_two_parts

from feedsvc.scanner import Scanner
from feedsvc.store import open_store

TOKEN = "settle-refresh-token-2718"
PARAGRAPHS = 40


def document(version: int) -> str:
    body = "".join(f"Paragraph {p} of version {version}.\n\n" for p in range(PARAGRAPHS))
    return f"---\ntitle: Rewritten V{version}\nid: rewritten\ndate: 2025-01-01 10:00\n---\n{body}"


def test_a_recent_file_is_pending_until_it_has_settled(tmp_path: Path, make_settings) -> None:
    content = tmp_path / "content"
    content.mkdir()
    path = content / "fresh.md"
    path.write_text(document(1), encoding="utf-8")
    written = datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=UTC)
    settings = make_settings(content, content_settle_seconds="2")
    store = open_store(settings.store.url)
    clock = {"now": written + timedelta(seconds=1)}
    scanner = Scanner(settings, store, lambda: clock["now"])
    try:
        report = scanner.run()
        assert report.pending == ("fresh.md",)
        assert report.errors == () and report.added == 0
        assert store.item("rewritten") is None
        clock["now"] = written + timedelta(seconds=2, milliseconds=1)
        report = scanner.run()
        assert report.pending == () and report.added == 1
        assert store.item("rewritten") is not None
        # A changed file is pending too, and its last good version stays published.
        path.write_text(document(2), encoding="utf-8")
        changed = datetime.fromtimestamp(path.stat().st_mtime_ns / 1e9, tz=UTC)
        clock["now"] = changed + timedelta(milliseconds=500)
        report = scanner.run()
        assert report.pending == ("fresh.md",) and report.errors == ()
        item = store.item("rewritten")
        assert item is not None and item.title == "Rewritten V1"
        assert "1 pending" in report.summary()
        clock["now"] = changed + timedelta(seconds=3)
        assert scanner.run().updated == 1
        item = store.item("rewritten")
        assert item is not None and item.title == "Rewritten V2"
    finally:
        store.close()


def test_a_file_rewritten_every_10_ms_never_publishes_a_truncated_version(
    serve, tmp_path: Path
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    path = content / "rewritten.md"
    path.write_text(document(0), encoding="utf-8")
    old = time.time() - 60
    os.utime(path, (old, old))  # version 0 has settled
    server = serve(content, "--no-watch", server_refresh_token=TOKEN, content_settle_seconds="1")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    stop = threading.Event()
    last = {"version": 0}

    def rewrite() -> None:
        version = 0
        while not stop.is_set():
            version += 1
            text = document(version)
            # the header and half the body, then the rest
            write_in_two_parts(path, text, len(text) // 2, 0.002)
            last["version"] = version
            time.sleep(0.008)

    def published() -> tuple[str, str]:
        feed = requests.get(server.url + "/feeds/all/all.json", timeout=30).json()
        (item,) = [i for i in feed["items"] if i["id"].endswith("rewritten")]
        return item["title"], item["content_html"]

    def complete(title: str, html: str) -> bool:
        version = title.removeprefix("Rewritten V")
        return html.count(f"of version {version}.") == PARAGRAPHS

    first = requests.post(server.url + "/api/refresh", headers=auth, timeout=60).json()
    assert first["added"] == 1, first
    writer = threading.Thread(target=rewrite)
    writer.start()
    truncated: list[str] = []
    pending_seen = 0
    try:
        for _ in range(120):
            report = requests.post(server.url + "/api/refresh", headers=auth, timeout=60).json()
            assert report["errors"] == [], report
            pending_seen += "rewritten.md" in report["pending"]
            title, html = published()
            if not complete(title, html):
                truncated.append(title)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert truncated == []
    assert pending_seen > 0
    final = f"Rewritten V{last['version']}"
    deadline = time.monotonic() + 60
    while published()[0] != final:
        assert time.monotonic() < deadline, f"{final} never published: {published()[0]}"
        requests.post(server.url + "/api/refresh", headers=auth, timeout=60)
        time.sleep(0.2)
    assert complete(*published())
