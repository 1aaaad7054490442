"""What a subscriber sees from a real server: whole HTTP round trips with real clients."""

from __future__ import annotations

import os
import time
from pathlib import Path

import feedparser
import requests

TOKEN = "lifecycle-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
FEEDS = ["/feeds/all/all.rss", "/feeds/all/all.atom", "/feeds/all/all.json"]


def refresh(url: str) -> dict:
    response = requests.post(url + "/api/refresh", headers=AUTH, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


def first_entry(url: str, path: str) -> dict:
    body = requests.get(url + path, timeout=30)
    assert body.status_code == 200
    if path.endswith(".json"):
        item = body.json()["items"][0]
        return {"id": item["id"], "title": item["title"], "updated": item["date_modified"]}
    parsed = feedparser.parse(body.content)
    assert not parsed.bozo, parsed.bozo_exception
    entry = parsed.entries[0]
    # RSS has no updated date; Atom's is what readers show as "edited".
    updated = entry.updated if dict.__contains__(entry, "updated") else None
    return {"id": entry.id, "title": entry.title, "updated": updated}


def etags(url: str) -> dict[str, str]:
    return {path: requests.get(url + path, timeout=30).headers["ETag"] for path in FEEDS}


def test_add_edit_touch_delete_restart(serve, content_dir: Path) -> None:
    server = serve(content_dir, "--no-watch", server_refresh_token=TOKEN)
    assert refresh(server.url)["added"] == 2

    # Add: the new file is first in every all/all feed.
    new = content_dir / "breaking.md"
    new.write_text(
        "# Breaking: river bridge reopens\n\nThe bridge reopened at dawn.\n", encoding="utf-8"
    )
    report = refresh(server.url)
    assert report["added"] == 1 and report["unchanged"] == 2
    added = {path: first_entry(server.url, path) for path in FEEDS}
    for entry in added.values():
        assert entry["title"] == "Breaking: river bridge reopens"

    # Edit: same id, later updated date.
    stat = new.stat()
    new.write_text(
        "# Breaking: river bridge reopens\n\nThe bridge reopened at dawn, two days early.\n",
        encoding="utf-8",
    )
    os.utime(new, ns=(stat.st_atime_ns, stat.st_mtime_ns + 60_000_000_000))
    assert refresh(server.url)["updated"] == 1
    for path in FEEDS:
        edited = first_entry(server.url, path)
        assert edited["id"] == added[path]["id"]
        if added[path]["updated"] is not None:
            assert edited["updated"] > added[path]["updated"]

    # Touch without change: nothing moves.
    before = etags(server.url)
    os.utime(content_dir / "002_ad53fbf95e7bb634.txt", ns=(time.time_ns(), time.time_ns()))
    report = refresh(server.url)
    assert (report["added"], report["updated"], report["removed"]) == (0, 0, 0)
    assert etags(server.url) == before

    # Delete: gone from the feeds.
    new.unlink()
    assert refresh(server.url)["removed"] == 1
    for path in FEEDS:
        assert first_entry(server.url, path)["title"] != "Breaking: river bridge reopens"
    after_delete = {path: requests.get(server.url + path, timeout=30).content for path in FEEDS}

    # Restart: the same bytes.
    server.stop()
    again = serve(content_dir, "--no-watch", server_refresh_token=TOKEN)
    for path in FEEDS:
        assert requests.get(again.url + path, timeout=30).content == after_delete[path]


def test_every_feed_reads_cleanly_in_feedparser(serve, content_dir: Path) -> None:
    server = serve(content_dir, "--no-watch", server_refresh_token=TOKEN)
    refresh(server.url)
    opml = requests.get(server.url + "/feeds.opml", timeout=30).text
    urls = [part.split('"')[0] for part in opml.split('xmlUrl="')[1:]]
    assert len(urls) >= 10
    for url in urls:
        path = url.removeprefix("https://news.example.com")
        response = requests.get(server.url + path, timeout=30, headers={"Accept-Encoding": "gzip"})
        assert response.status_code == 200, path
        parsed = feedparser.parse(response.content)
        assert not parsed.bozo, (path, parsed.bozo_exception)
        for entry in parsed.entries:
            assert entry.id and entry.title and entry.link and entry.published_parsed


def test_the_watcher_scans_at_start_up(serve, content_dir: Path) -> None:
    server = serve(content_dir, server_refresh_token=TOKEN)
    server.wait_for_log(r"scan: 2 added, 0 updated, 0 removed")
    status = requests.get(server.url + "/api/status", timeout=30).json()
    assert status["items"] == 2
