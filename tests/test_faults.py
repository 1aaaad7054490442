"""Faults (issue #6): kill -9 mid-scan, a full disk, a locked SQLite file, PostgreSQL
dropping away, the content folder vanishing, and files changing under a running scan.

After each: the store is consistent, the feeds keep their last good state, and
``/api/status`` says ``degraded`` with the reason until the fault is gone.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from conftest import feedsvc_env, write_in_two_parts
from flask.testing import FlaskClient

from feedsvc.errors import ContentRootError, StoreError
from feedsvc.scanner import Scanner
from feedsvc.settings import Settings
from feedsvc.store import Store, open_store
from feedsvc.web import create_app

TOKEN = "faults-token-7f3a"
FEEDS = ["/feeds/all/all.rss", "/feeds/all/all.atom", "/feeds/all/all.json"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def write_article(root: Path, i: int, version: int = 0) -> None:
    (root / f"a{i:04d}.md").write_text(
        f"---\ntitle: Article {i} v{version}\ndate: 2025-02-{1 + i % 28:02d} 10:00\n"
        f"updated: 2025-03-01 10:{version % 60:02d}\nlang: en\ncategories: [c{i % 5}]\n---\n"
        f"Body of article {i}, version {version}. " + "Lorem ipsum dolor sit amet. " * 20 + "\n",
        encoding="utf-8",
    )


def check_consistent(url: str) -> dict[str, str]:
    """Every cross-table rule of the store holds; return item id -> title."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if url.startswith("sqlite"):
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            q = conn.exec_driver_sql
            orphans = q(
                "SELECT i.id FROM items i LEFT JOIN files f ON f.path = i.source_path"
                " WHERE f.path IS NULL OR f.item_id IS NULL OR f.item_id <> i.id"
            ).all()
            assert orphans == [], orphans
            dangling = q(
                "SELECT f.path FROM files f LEFT JOIN items i ON i.id = f.item_id"
                " WHERE f.item_id IS NOT NULL AND i.id IS NULL"
            ).all()
            assert dangling == [], dangling
            cats = q(
                "SELECT c.item_id FROM item_categories c LEFT JOIN items i ON i.id = c.item_id"
                " WHERE i.id IS NULL"
            ).all()
            assert cats == [], cats
            uncategorised = q(
                "SELECT i.id FROM items i WHERE NOT EXISTS"
                " (SELECT 1 FROM item_categories c WHERE c.item_id = i.id)"
            ).all()
            assert uncategorised == []
            assert int(q("SELECT value FROM meta WHERE key = 'generation'").scalar()) >= 0
            import json

            return {row[0]: json.loads(row[1])["title"] for row in q("SELECT id, data FROM items")}
    finally:
        engine.dispose()


def _scan_in_child(settings: Settings, started: Any) -> None:
    started.set()
    store = open_store(settings.store.url)
    Scanner(settings, store, utc_now).run()
    store.close()
    os._exit(0)


def _scan_in_child_killed_after(settings: Settings, seconds: float) -> float | None:
    """Scan in a forked child, killed (kill -9) ``seconds`` after it started unless
    it ended before: None when the kill landed mid-scan, else how long it took."""
    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    child = fork.Process(target=_scan_in_child, args=(settings, started))
    child.start()
    assert started.wait(timeout=30), "the scanning child did not start"
    t0 = time.perf_counter()
    child.join(timeout=seconds)
    if child.exitcode is not None:
        assert child.exitcode == 0, child.exitcode
        return time.perf_counter() - t0
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    if child.exitcode == 0:  # it ended between the wait and the kill
        return seconds
    assert child.exitcode == -signal.SIGKILL, child.exitcode
    return None


@pytest.mark.parametrize("runs", [24])
def test_kill_9_at_random_points_leaves_a_consistent_store(
    tmp_path: Path, store_url: str, make_settings, runs: int
) -> None:
    rng = random.Random(int(os.environ.get("FEEDSVC_FAULT_SEED", "6")))
    root = tmp_path / "content"
    root.mkdir()
    count = 300
    for i in range(count):
        write_article(root, i)
    settings = make_settings(root, store_url)
    open_store(store_url).close()  # the store exists, as in service: kills hit its scans
    # Warm up in this process (language models), so each forked child starts scanning at once.
    warm = make_settings(root, f"sqlite:///{tmp_path / 'warm.sqlite3'}")
    warm_store = open_store(warm.store.url)
    t0 = time.perf_counter()
    Scanner(warm, warm_store, utc_now).run()
    full = time.perf_counter() - t0
    warm_store.close()
    versions = dict.fromkeys(range(count), 0)
    # Kills are timed from the child's start at a random point of a scan's length,
    # which the machine's load changes: `scan` follows the last scan that ended
    # before its kill, and grows while kills land before the end. Attempts go on
    # until `needed` kills landed mid-scan (at most three times `runs`).
    needed, scan, attempts, killed_midway = runs // 2, full, 0, 0
    while killed_midway < needed and attempts < 3 * runs:
        attempts += 1
        # Change a third of the files (edits, deletions, new files) so every scan writes.
        for i in rng.sample(range(count), count // 3):
            choice = rng.random()
            if choice < 0.8:
                versions[i] += 1
                write_article(root, i, versions[i])
            elif i in versions and (root / f"a{i:04d}.md").exists():
                (root / f"a{i:04d}.md").unlink()
        took = _scan_in_child_killed_after(settings, rng.uniform(0, scan * 1.1))
        killed_midway += took is None
        scan = scan * 1.05 if took is None else took
        check_consistent(store_url)
    assert killed_midway >= needed, f"only {killed_midway} of {attempts} kills landed mid-scan"
    # No stale lock: a separate `feedsvc scan` process completes promptly.
    env = {**os.environ, **feedsvc_env(tmp_path, root, store_url)}
    env.pop("FEEDSVC_FAULT_SEED", None)  # this test's knob, not a setting
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "scan", "--strict"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    titles = check_consistent(store_url)
    # The store now equals a fresh scan of the same folder.
    fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    fresh = open_store(fresh_url)
    Scanner(make_settings(root, fresh_url), fresh, utc_now).run()
    fresh.close()
    assert titles == check_consistent(fresh_url)
    print(f"{killed_midway}/{attempts} kills landed during a scan (a full scan takes {full:.2f} s)")


def test_kill_9_of_the_scan_command_leaves_no_stale_lock(tmp_path: Path, make_settings) -> None:
    root = tmp_path / "content"
    root.mkdir()
    for i in range(200):
        write_article(root, i)
    url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    env = {**os.environ, **feedsvc_env(tmp_path, root, url)}
    for delay in (0.8, 1.6, 2.4):
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "scan"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(delay)
        proc.kill()  # SIGKILL, by its own PID
        proc.wait(timeout=30)
        for i in range(0, 200, 3):
            write_article(root, i, int(delay * 10))
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "scan"], env=env, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert len(check_consistent(url)) == 200


# --- the store refuses writes ------------------------------------------------------------------


def served(client: FlaskClient) -> dict[str, tuple[int, str, bytes]]:
    out = {}
    for path in FEEDS:
        response = client.get(path)
        out[path] = (response.status_code, response.headers.get("ETag", ""), response.data)
    return out


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_fails_the_scan_cleanly_and_keeps_the_feeds(
    tiny_disk: Path, content_dir: Path, make_settings
) -> None:
    settings = make_settings(
        content_dir, f"sqlite:///{tiny_disk / 'store.sqlite3'}", server_refresh_token=TOKEN
    )
    store = open_store(settings.store.url)
    try:
        scanner_clock = utc_now
        Scanner(settings, store, scanner_clock).run()
        app = create_app(settings, store=store)
        client = app.test_client()
        before = served(client)
        assert all(status == 200 for status, _, _ in before.values())
        rng = random.Random(1)
        for i in range(400):  # ~4 MB of incompressible text: more than the disk holds
            words = " ".join(f"{rng.getrandbits(64):x}" for _ in range(600))
            (content_dir / f"big{i:03d}.md").write_text(f"# Big {i}\n\n{words}\n", "utf-8")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        response = client.post("/api/refresh", headers=auth)
        assert response.status_code == 503
        assert response.json == {"error": "the store is not available"}
        assert served(client) == before  # old items still served, same bytes
        status = client.get("/api/status").json
        assert status["status"] == "degraded"
        assert "full" in status["error"]
        assert str(tiny_disk) not in status["error"]
        assert client.get("/healthz").status_code == 200  # the store still answers reads
        check_consistent(settings.store.url)
        # Room again: the next scan completes and the status recovers.
        for i in range(400):
            (content_dir / f"big{i:03d}.md").unlink()
        (content_dir / "small.md").write_text("# Small\n\nfits\n", encoding="utf-8")
        report = client.post("/api/refresh", headers=auth).json
        assert report["added"] == 1
        status = client.get("/api/status").json
        assert status["status"] == "ok" and "error" not in status
    finally:
        store.close()


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
db.execute("UPDATE meta SET value = value WHERE key = 'generation'")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
"""


def test_sqlite_file_locked_by_another_process(
    tmp_path: Path, content_dir: Path, make_settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feedsvc.store import backend

    monkeypatch.setattr(backend, "_BUSY_TIMEOUT_S", 1)  # wait 1 s for the lock, not 10
    db = tmp_path / "store.sqlite3"
    settings = make_settings(content_dir, f"sqlite:///{db}", server_refresh_token=TOKEN)
    store = open_store(settings.store.url)
    locker = None
    try:
        Scanner(settings, store, utc_now).run()
        client = create_app(settings, store=store).test_client()
        before = served(client)
        (content_dir / "new.md").write_text("# New\n\nwhile locked\n", encoding="utf-8")
        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(db)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        started = time.monotonic()
        response = client.post("/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
        waited = time.monotonic() - started
        assert response.status_code == 503
        assert 0.9 <= waited < 10, waited  # busy_timeout, then a clear error; no hang
        assert served(client) == before
        status = client.get("/api/status").json
        assert status["status"] == "degraded"
        assert "locked" in status["error"]
        assert client.get("/healthz").status_code == 200  # reads still work (WAL)
        assert locker.stdin is not None
        locker.stdin.write("\n")
        locker.stdin.flush()
        locker.wait(timeout=30)
        report = client.post("/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"}).json
        assert report["added"] == 1
        assert client.get("/api/status").json["status"] == "ok"
        check_consistent(settings.store.url)
    finally:
        if locker is not None:
            if locker.poll() is None:
                locker.kill()  # by its own PID
                locker.wait(timeout=30)
            for pipe in (locker.stdin, locker.stdout):
                if pipe is not None:
                    pipe.close()
        store.close()


# --- PostgreSQL goes away and comes back ---------------------------------------------------------


class CuttableProxy:
    """A TCP proxy to PostgreSQL that a test can cut (refuse and drop) and restore."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while True:
                ready, _, _ = select.select([a, b], [], [], 1)
                for src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for s in (a, b):
                s.close()

    def cut(self) -> None:
        """Refuse new connections and drop every open one, as a stopped server would."""
        assert self._listener is not None
        # shutdown() first: close() alone leaves a socket blocked in accept() listening.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def close(self) -> None:
        self.cut()


def _pg_app(pg_url: str, proxy_port: int | None, content: Path, make_settings):
    url = sa.make_url(pg_url)
    if proxy_port is not None:
        url = url.set(host="127.0.0.1", port=proxy_port)
    app_name = f"feedsvc_fault_{uuid.uuid4().hex[:8]}"
    url = url.update_query_dict({"application_name": app_name})
    text = url.render_as_string(hide_password=False)
    settings = make_settings(content, text, server_refresh_token=TOKEN)
    store = open_store(settings.store.url)
    Scanner(settings, store, utc_now).run()
    return settings, store, create_app(settings, store=store), app_name


def _recovers(client: FlaskClient, attempts: int = 5) -> None:
    """Within a few requests every route answers 200 again, without a restart."""
    for path in ["/api/status", "/healthz", "/", *FEEDS]:
        statuses = []
        for _ in range(attempts):
            response = client.get(path)
            statuses.append(response.status_code)
            assert response.status_code != 500, (path, response.data[:200])
            if response.status_code == 200:
                break
        assert statuses[-1] == 200, (path, statuses)


@pytest.mark.postgres
def test_postgres_connections_terminated(pg_url: str, content_dir: Path, make_settings) -> None:
    _, store, app, app_name = _pg_app(pg_url, None, content_dir, make_settings)
    admin = sa.create_engine(pg_base := pg_url.split("?", maxsplit=1)[0])
    try:
        client = app.test_client()
        before = served(client)
        for _ in range(3):
            with admin.begin() as conn:
                killed = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE application_name = :name"
                    ),
                    {"name": app_name},
                ).scalar()
            assert killed >= 1
            assert served(client) == before  # feeds from the cache, or re-read: same bytes
            _recovers(client)
            auth = {"Authorization": f"Bearer {TOKEN}"}
            response = client.post("/api/refresh", headers=auth)
            if response.status_code == 503:  # one pooled connection may still be a dead one
                response = client.post("/api/refresh", headers=auth)
            assert response.status_code == 200
        assert pg_base
    finally:
        admin.dispose()
        store.close()


@pytest.mark.postgres
def test_postgres_stopped_and_restarted_behind_a_proxy(
    pg_url: str, content_dir: Path, make_settings
) -> None:
    target = sa.make_url(pg_url)
    proxy = CuttableProxy((target.host or "127.0.0.1", target.port or 5432))
    _, store, app, _ = _pg_app(pg_url, proxy.port, content_dir, make_settings)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        client = app.test_client()
        before = served(client)
        proxy.cut()
        # Down: cached feeds keep being served; everything else says so, never a 500.
        assert served(client) == before
        assert client.get("/healthz").status_code == 503
        status = client.get("/api/status")
        assert status.status_code == 503 and status.json["status"] == "degraded"
        refresh = client.post("/api/refresh", headers=auth)
        assert refresh.status_code == 503
        for path in ["/", "/feeds.opml", "/items/000_a08af95bc486be6a", "/metrics"]:
            response = client.get(path)
            assert response.status_code in (200, 503), (path, response.status_code)
            assert b"postgres" not in response.data.lower() or path == "/"
        time.sleep(0.5)
        proxy.restore()
        _recovers(client)
        response = client.post("/api/refresh", headers=auth)
        if response.status_code == 503:
            response = client.post("/api/refresh", headers=auth)
        assert response.status_code == 200
        assert client.get("/api/status").json["status"] == "ok"
        assert served(client) == before
    finally:
        store.close()
        proxy.close()


# --- the content folder goes away ---------------------------------------------------------------


def test_content_folder_missing_replaced_or_swapped_for_a_link(
    tmp_path: Path, content_dir: Path, make_settings
) -> None:
    settings = make_settings(content_dir, server_refresh_token=TOKEN)
    store = open_store(settings.store.url)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    aside = tmp_path / "aside"
    try:
        Scanner(settings, store, utc_now).run()
        client = create_app(settings, store=store).test_client()
        before = served(client)

        def fault(expected: str) -> None:
            response = client.post("/api/refresh", headers=auth)
            assert response.status_code == 503
            assert expected in response.json["error"]
            assert served(client) == before  # items kept
            status = client.get("/api/status").json
            assert status["status"] == "degraded"
            assert expected in status["error"]
            assert str(tmp_path) not in str(status)
            assert status["items"] == 2

        content_dir.rename(aside)
        fault("does not exist")
        content_dir.write_text("not a folder")
        fault("is not a folder")
        content_dir.unlink()
        content_dir.symlink_to(aside)
        fault("symbolic link")
        content_dir.unlink()
        content_dir.mkdir()
        fault("has no files")
        content_dir.rmdir()
        aside.rename(content_dir)
        report = client.post("/api/refresh", headers=auth)
        assert report.status_code == 200
        assert report.json["removed"] == 0
        status = client.get("/api/status").json
        assert status["status"] == "ok" and "error" not in status
        assert served(client) == before
    finally:
        store.close()


def test_the_watcher_reports_a_vanished_folder_to_every_process(
    serve, tmp_path: Path, content_dir: Path
) -> None:
    server = serve(content_dir, watch_interval_seconds="1")
    server.wait_for_log(r"scan: 2 added")

    def status() -> dict:
        return requests.get(server.url + "/api/status", timeout=30).json()

    aside = tmp_path / "aside"
    content_dir.rename(aside)
    deadline = time.monotonic() + 30
    while status()["status"] != "degraded" and time.monotonic() < deadline:
        time.sleep(0.2)
    found = status()
    assert found["status"] == "degraded"
    assert found["error"] == "the content folder does not exist"
    assert found["items"] == 2
    assert requests.get(server.url + "/feeds/all/all.rss", timeout=30).status_code == 200
    aside.rename(content_dir)
    deadline = time.monotonic() + 30
    while status()["status"] != "ok" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert status()["status"] == "ok"
    server.stop()
    assert "Traceback" not in "".join(server.log)


# --- files change while scans run ---------------------------------------------------------------


def _doc(name: str, n: int) -> str:
    return (
        f"---\ntitle: {name} V{n}\ndate: 2025-01-01 10:00\nid: {name}\n"
        f"summary: {name} summary {n}\n---\n" + f"{name} body V{n}. " * 200 + "\n"
    )


def _keep_writing(content_dir: Path, stop: threading.Event, written: dict[str, int]) -> None:
    """Until ``stop``: rewrite inplace.md in place (half-written for a moment),
    replace atomic.md whole, and make flap.md appear and vanish; ``written``
    holds the last version of each."""
    n = 0
    inplace = content_dir / "inplace.md"
    atomic = content_dir / "atomic.md"
    flap = content_dir / "flap.md"
    while not stop.is_set():
        n += 1
        text = _doc("inplace", n)
        # a half-written file: front matter not closed yet
        write_in_two_parts(inplace, text, text.index("date:"), 0.004)
        written["inplace"] = n
        tmp = content_dir / ".atomic.tmp"
        tmp.write_text(_doc("atomic", n), encoding="utf-8")
        os.replace(tmp, atomic)
        written["atomic"] = n
        if n % 2:
            # Created whole (a scan catching an in-place write half done is
            # inplace.md's case): this file tests appearing and vanishing.
            tmp = content_dir / ".flap.tmp"
            tmp.write_text("# Flap\n\nnow you see me\n", encoding="utf-8")
            os.replace(tmp, flap)
        else:
            flap.unlink(missing_ok=True)
        time.sleep(0.003)


def test_files_written_replaced_and_deleted_while_scans_run(
    tmp_path: Path, content_dir: Path, make_settings
) -> None:
    settings: Settings = make_settings(content_dir)
    store: Store = open_store(settings.store.url)
    scanner = Scanner(settings, store, utc_now)
    scanner.run()
    stop = threading.Event()
    written = {"inplace": 0, "atomic": 0}
    problems: list[str] = []

    thread = threading.Thread(target=_keep_writing, args=(content_dir, stop, written))
    thread.start()
    seen: set[str] = set()
    scans = 0
    try:
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            report = scanner.run()
            scans += 1
            for error in report.errors:
                if error.path != "inplace.md":
                    problems.append(f"{error.path}: {error.error}")
            for name in ("inplace", "atomic"):
                item = store.item(name)
                if item is None:
                    if name in seen:
                        problems.append(f"{name} was lost")
                    continue
                seen.add(name)
                version = item.title.removeprefix(f"{name} V")
                # Title, summary and body always come from one complete version.
                if item.summary != f"{name} summary {version}":
                    problems.append(f"{name}: title {item.title!r}, summary {item.summary!r}")
                if item.content_text.count(f"{name} body V{version}.") != 200:
                    problems.append(f"{name}: body of {item.title!r} incomplete")
            for sample in ("000_a08af95bc486be6a", "002_ad53fbf95e7bb634"):
                if store.item(sample) is None:
                    problems.append(f"{sample} was lost")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not problems, problems[:10]
    assert seen == {"inplace", "atomic"}
    final = scanner.run()
    assert final.errors == ()
    for name in ("inplace", "atomic"):
        item = store.item(name)
        assert item is not None and item.title == f"{name} V{written[name]}"
    check_consistent(settings.store.url)
    store.close()
    print(f"{scans} scans while files changed")


def test_a_failing_scan_raises_in_every_caller_and_leaves_no_running_state(
    content_dir: Path, make_settings
) -> None:
    settings = make_settings(content_dir)
    store = open_store(settings.store.url)
    scanner = Scanner(settings, store, utc_now)
    try:
        shutil.rmtree(content_dir)
        for _ in range(3):
            with pytest.raises(ContentRootError):
                scanner.run()
        failure = store.last_failure()
        assert failure is not None and failure.reason == "the content folder does not exist"
        content_dir.mkdir()
        (content_dir / "x.md").write_text("# X\n\nback\n", encoding="utf-8")
        assert scanner.run().added == 1
        assert store.last_failure() is None and scanner.last_failure is None
    finally:
        store.close()
    with pytest.raises(StoreError):
        store_closed = open_store(f"sqlite:///{content_dir}/x.md/nope.sqlite3")
        store_closed.close()
