"""The store heals (issue #13, point 2): a store file deleted under a running ``feedsvc serve``.

The watcher notices at its next scan that the file at the store's path is not
the one it opened (st_dev/st_ino), says so in the log and in ``/api/status``,
opens a new store there and rebuilds it from the content; the web workers
follow. Nothing is written into the deleted file: after the episode, the file
on disk holds every item, including one added afterwards. (Full-disk episodes
heal without a restart too: ``test_supervision.py`` and ``test_faults.py``.)
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import requests


def _until(check: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _titles_on_disk(db: Path) -> set[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        import json

        return {json.loads(row[0])["title"] for row in conn.execute("SELECT data FROM items")}
    finally:
        conn.close()


def test_a_deleted_store_file_is_noticed_and_rebuilt_never_written_while_deleted(
    serve, content_dir: Path, tmp_path: Path
) -> None:
    db = tmp_path / "store.sqlite3"
    server = serve(content_dir, store_url=f"sqlite:///{db}", watch_interval_seconds="2")
    feed_url = server.url + "/feeds/all/all.json"
    _until(lambda: requests.get(feed_url).status_code == 200, "the first scan")
    before = {item["title"] for item in requests.get(feed_url).json()["items"]}
    assert len(before) == 2
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    server.wait_for_log(r"the store file was deleted while feedsvc ran: reopened it")

    def said_so() -> bool:
        status = requests.get(server.url + "/api/status").json()
        return any("store file was deleted" in r for r in status.get("reasons", []))

    _until(said_so, "/api/status naming the deleted store file", timeout=10)
    # The feeds were served all along, and are again from the rebuilt store.
    assert requests.get(feed_url).status_code == 200
    (content_dir / "after.md").write_text("# Added after\n\nnew\n", encoding="utf-8")
    _until(
        lambda: "Added after" in {i["title"] for i in requests.get(feed_url).json()["items"]},
        "the new item served from the new store file",
    )
    assert _titles_on_disk(db) == before | {"Added after"}
