"""No orphans (issue #13, point 3): ``kill -9`` of scan, watch or serve leaves no process behind.

Each command is started on enough files that its scan spreads parsing over the
process pool, with a marker in its environment that every process it starts
inherits. Once pool processes run, the command is killed with SIGKILL; then no
process carrying the marker may remain, and its standard output (a pipe, as
in ``feedsvc scan | tee log``) must reach end-of-file.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import feedsvc_env

from feedsvc.pipeline import POOL_MIN_FILES

MARK = "ORPHAN_TEST_MARK"


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _marked(mark: str) -> dict[int, bytes]:
    """Live processes whose environment carries ``mark``, with their command lines."""
    needle = f"{MARK}={mark}".encode()
    found: dict[int, bytes] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and _alive(int(entry.name)):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ")
    return found


def _pool_workers(mark: str) -> list[int]:
    return [pid for pid, cmd in _marked(mark).items() if b"multiprocessing.spawn" in cmd]


@pytest.fixture(scope="module")
def many_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("orphans") / "content"
    root.mkdir()
    for i in range(POOL_MIN_FILES + 200):
        (root / f"n{i:05d}.md").write_text(
            f"---\ntitle: Story {i}\ndate: 2025-01-01\n---\nBody of story {i}.\n", "utf-8"
        )
    return root


@pytest.mark.parametrize("command", ["scan", "watch", "serve"])
@pytest.mark.timeout(300)
def test_kill_9_leaves_no_process_and_ends_the_pipe(
    command: str, many_files: Path, tmp_path: Path
) -> None:
    mark = uuid.uuid4().hex
    env = {**os.environ, **feedsvc_env(tmp_path, many_files, server_workers="2"), MARK: mark}
    argv = [sys.executable, "-m", "feedsvc", command]
    if command == "serve":
        argv += ["--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + 180
        while len(_pool_workers(mark)) < 2:
            assert proc.poll() is None, f"{command} exited before its pool started"
            assert time.monotonic() < deadline, ("no pool processes", _marked(mark))
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _marked(mark) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _marked(mark) == {}, "left behind"
        # Nobody holds the pipe any more: reading it ends.
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "stdout is still held open"
        while proc.stdout.read(65536):
            pass
    finally:
        for pid in _marked(mark):  # only after a failure: ours, by PID
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdout.close()
