"""File events: a write under the content root reaches the feeds with no refresh call,
debounced into one scan; with events off or unavailable the scheduled rescan still
does, and /api/status says which."""

from __future__ import annotations

import errno
import threading
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import pytest
import requests
from conftest import wait_until

from feedsvc.events import Debouncer, FileEvents
from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.watcher import start_file_events
from feedsvc.web import create_app

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def write_story(root: Path, name: str, title: str) -> None:
    """Write the file in several chunks, as an editor or a copy does."""
    body = f"---\ntitle: '{title}'\ndate: 2025-06-01 10:00\n---\nA story about {title}.\n"
    with open(root / name, "w", encoding="utf-8") as f:
        for start in range(0, len(body), 16):
            f.write(body[start : start + 16])
            f.flush()


def titles(url: str) -> list[str]:
    parsed = feedparser.parse(requests.get(url, timeout=10).content)
    return [entry.title for entry in parsed.entries]


# ----------------------------------------------------------------- the debounce rule


class Calls:
    def __init__(self, follow_up: float | None = None) -> None:
        self.count = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.release.set()
        self.follow_up = follow_up

    def __call__(self) -> float | None:
        self.release.wait(10)
        with self.lock:
            self.count += 1
        follow_up, self.follow_up = self.follow_up, None
        return follow_up


def test_a_burst_of_events_is_one_scan() -> None:
    calls = Calls()
    debouncer = Debouncer(calls, 0.05)
    debouncer.start()
    try:
        for _ in range(200):
            debouncer.poke()
        wait_until(lambda: calls.count >= 1, what="the burst's scan")
        debouncer.poke()  # a later event brings exactly one more
        wait_until(lambda: calls.count >= 2, what="the second scan")
    finally:
        debouncer.stop()
    assert calls.count == 2


def test_an_event_during_a_scan_brings_another_scan() -> None:
    calls = Calls()
    calls.release.clear()  # the first scan blocks until released
    debouncer = Debouncer(calls, 0.02)
    debouncer.start()
    try:
        debouncer.poke()
        wait_until(lambda: debouncer._first is None, what="the first scan to start")
        debouncer.poke()  # while that scan runs
        calls.release.set()
        wait_until(lambda: calls.count >= 2, what="the scan after the running one")
    finally:
        debouncer.stop()


def test_a_scan_asking_for_a_follow_up_gets_one_without_events() -> None:
    calls = Calls(follow_up=0.05)  # e.g. a file that must settle first
    debouncer = Debouncer(calls, 0.02)
    debouncer.start()
    try:
        debouncer.poke()
        wait_until(lambda: calls.count >= 2, what="the follow-up scan")
    finally:
        debouncer.stop()


# ----------------------------------------------------------------- unavailable events


def test_events_on_a_missing_folder_are_unavailable_and_nothing_runs(tmp_path: Path) -> None:
    before = threading.active_count()
    events = FileEvents(tmp_path / "nope", lambda: None, 0.05)
    reason = events.start()
    assert reason is not None
    events.stop()
    assert threading.active_count() == before


def test_inotify_limits_are_reported_in_the_log_and_api_status(
    content_dir: Path, make_settings, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from watchdog.observers import Observer

    def no_watches(self) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Observer, "start", no_watches)
    settings = make_settings(content_dir)
    store = open_store(settings.store.url)
    try:
        scanner = Scanner(settings, store, lambda: NOW)
        assert start_file_events(settings, scanner, store) is None
        assert "inotify watch limit reached" in caplog.text
        client = create_app(settings, store=store, clock=lambda: NOW).test_client()
        events = client.get("/api/status").get_json()["file_events"]
        assert events["available"] is False
        assert "fs.inotify.max_user_watches" in events["reason"]
    finally:
        store.close()


# ----------------------------------------------------------------- a real server


def test_a_written_file_reaches_the_feed_with_no_refresh(
    content_dir: Path, serve, tmp_path: Path
) -> None:
    # An hour between rescans: only a file event can bring the new story in time.
    server = serve(content_dir, watch_interval_seconds="3600")
    server.wait_for_log(r"scan finished")
    feed = server.url + "/feeds/all/all.atom"
    assert "Breaking: dam opened" not in titles(feed)

    write_story(content_dir, "breaking.md", "Breaking: dam opened")
    wait_until(
        lambda: "Breaking: dam opened" in titles(feed),
        what=lambda: "the new story in the feed:\n" + "".join(server.log),
    )

    status = requests.get(server.url + "/api/status", timeout=10).json()
    assert status["file_events"]["available"] is True
    assert server.proc.poll() is None


def test_with_file_events_off_the_scheduled_rescan_still_catches_a_change(
    content_dir: Path, serve
) -> None:
    server = serve(content_dir, watch_interval_seconds="2", watch_file_events="false")
    server.wait_for_log(r"file events unavailable \(switched off")
    # The watcher logs the state, then records it in the store for every worker.
    wait_until(
        lambda: (
            requests.get(server.url + "/api/status", timeout=10).json()["file_events"] is not None
        ),
        what="the file events state in /api/status",
    )
    status = requests.get(server.url + "/api/status", timeout=10).json()
    assert status["file_events"] == {
        "available": False,
        "reason": "switched off (watch.file_events = false)",
        "since": status["file_events"]["since"],
    }
    feed = server.url + "/feeds/all/all.rss"
    write_story(content_dir, "late.md", "Late edition")
    wait_until(
        lambda: "Late edition" in titles(feed),
        what=lambda: "the rescan to pick the story up:\n" + "".join(server.log),
    )
