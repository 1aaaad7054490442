"""Supervision and shared health (issue #13, point 1) against a real ``feedsvc serve``.

The watcher is found in the process tree of the server we started and killed
with SIGKILL: the server logs it, says ``degraded`` with the reason on every
worker while it is gone, starts a new one, and is ``ok`` again once the new
watcher has reported. A store whose disk fills up makes
every worker say so, while ``/healthz`` keeps answering 200.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from conftest import child_pids, wait_until

STATUS_POLLS = 8  # requests per check: with two workers, every worker answers


def _watchers(server_pid: int) -> list[int]:
    out = []
    for pid in child_pids(server_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"watch" in cmdline:
            out.append(pid)
    return out


def _statuses(url: str) -> list[dict[str, object]]:
    return [requests.get(url + "/api/status", timeout=30).json() for _ in range(STATUS_POLLS)]


def _all_ok(url: str) -> bool:
    """Every worker says ok, after a scan has finished."""
    return all(s["status"] == "ok" and s["last_scan"] is not None for s in _statuses(url))


def test_a_killed_watcher_is_restarted_logged_and_reported(serve, content_dir: Path) -> None:
    server = serve(content_dir, watch_interval_seconds="1")
    wait_until(lambda: _all_ok(server.url), "status ok with a running watcher")
    (watcher,) = _watchers(server.proc.pid)
    os.kill(watcher, signal.SIGKILL)

    def degraded() -> list[str] | None:
        answers = _statuses(server.url)
        if all(a["status"] == "degraded" for a in answers):
            return [r for a in answers for r in a.get("reasons", [])]  # type: ignore[attr-defined]
        return None

    reasons = wait_until(degraded, "every worker saying degraded")
    assert any("watcher" in r and "killed by signal 9" in r for r in reasons), reasons  # type: ignore[attr-defined]
    health = requests.get(server.url + "/healthz", timeout=30)
    assert health.status_code == 200  # the last good feeds are still served
    server.wait_for_log(rf"watcher \(pid {watcher}\) was killed by signal 9 \(SIGKILL\)")
    line = server.wait_for_log(r"watcher restarted \(pid \d+\)")
    new = int(line.rsplit("pid ", 1)[1].split(")")[0])
    assert new != watcher
    # One watcher again, a new one (the old PID is gone for good).
    wait_until(lambda: len(_watchers(server.proc.pid)) == 1, "one running watcher")
    assert watcher not in _watchers(server.proc.pid)
    wait_until(lambda: _all_ok(server.url), "status ok once the new watcher reported")
    # The new watcher scans: a new file appears without a manual refresh.
    (content_dir / "after.md").write_text("# After the restart\n\nnew\n", encoding="utf-8")
    wait_until(
        lambda: "After the restart" in requests.get(server.url + "/feeds/all/all.rss").text,
        "the restarted watcher's scan",
    )


def test_a_watcher_that_keeps_dying_is_restarted_with_backoff(serve, content_dir: Path) -> None:
    server = serve(content_dir, watch_interval_seconds="1")
    wait_until(lambda: _watchers(server.proc.pid), "a watcher")
    delays = []
    for _ in range(3):
        (watcher,) = wait_until(lambda: _watchers(server.proc.pid), "a watcher")  # type: ignore[misc]
        os.kill(watcher, signal.SIGKILL)
        line = server.wait_for_log(rf"watcher \(pid {watcher}\) .* restarting it in ([\d.]+) s")
        delays.append(float(line.rsplit("in ", 1)[1].split()[0]))
        wait_until(lambda w=watcher: _watchers(server.proc.pid) not in ([], [w]), "a new watcher")
    assert delays == [1, 2, 4], delays


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs of its own, so the test can fill it (needs root, as on CI)."""
    mount = tmp_path / "var"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"cannot mount a tmpfs on CI: {done.stderr.decode().strip()}")
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_every_worker_says_the_disk_is_full_and_healthz_stays_200(
    serve, content_dir: Path, small_mount: Path
) -> None:
    url = f"sqlite:///{small_mount / 'store.sqlite3'}"
    server = serve(content_dir, store_url=url, watch_interval_seconds="1")
    wait_until(lambda: _all_ok(server.url), "status ok")
    feed = requests.get(server.url + "/feeds/all/all.rss", timeout=30).content
    filler = small_mount / "filler"
    with open(filler, "wb") as handle:  # fill the disk the store lives on
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    rng = random.Random(13)
    for i in range(100):  # more than the room left in the store's own files
        words = " ".join(f"{rng.getrandbits(64):x}" for _ in range(1200))
        text = f"---\ntitle: New {i}\nlang: en\n---\n{words}\n"  # no language to detect
        (content_dir / f"new{i:03d}.md").write_text(text, "utf-8")
    try:

        def full() -> bool:
            return all(
                any("disk is full" in r for r in s.get("reasons", []))  # type: ignore[attr-defined]
                for s in _statuses(server.url)
            )

        wait_until(full, "every worker reporting the full disk")
        health = requests.get(server.url + "/healthz", timeout=30)
        assert health.status_code == 200
        assert health.text.startswith("degraded: ") and "disk is full" in health.text
        assert requests.get(server.url + "/feeds/all/all.rss", timeout=30).content == feed
    finally:
        filler.unlink()
    # Room again: the watcher's next scans succeed with no restart, and all is ok.
    wait_until(lambda: _all_ok(server.url), "status ok once there is room again")
    wait_until(
        lambda: "<title>New 99</title>" in requests.get(server.url + "/feeds/all/all.rss").text,
        "the new file, scanned after the disk had room again",
    )
