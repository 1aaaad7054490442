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
    """Pool processes: spawned ones, or those forked by the pool's fork server
    (a child of the server shows the server's command line)."""
    marked = _marked(mark)
    server = b"multiprocessing.forkserver"
    return [
        pid
        for pid, cmd in marked.items()
        if b"multiprocessing.spawn" in cmd
        or (server in cmd and server in marked.get(_parent(pid), b""))
    ]


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


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
        deadline = _kill_and_wait_for_nothing_left(proc, mark, command)
        # Nobody holds the pipe any more: reading it ends.
        ready, _, _ = select.select([proc.stdout], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, "stdout is still held open"
        while proc.stdout.read(65536):
            pass
    finally:
        _clean_up(proc, mark)
        proc.stdout.close()


def _kill_and_wait_for_nothing_left(proc: subprocess.Popen[bytes], mark: str, what: str) -> float:
    """SIGKILL ``proc``; assert that within 30 s no marked process is left.
    Returns that deadline."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _marked(mark) == {}, ("left behind", what)
    return deadline


def _clean_up(proc: subprocess.Popen[bytes], mark: str) -> None:
    """Only after a failure: end what is ours, by PID."""
    for pid in _marked(mark):
        os.kill(pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def _fork_server(mark: str) -> list[int]:
    """The pool's fork server: a marked process with its command line whose
    parent is not one too (its workers' parent is the server)."""
    marked = _marked(mark)
    server = b"multiprocessing.forkserver"
    return [
        pid
        for pid, cmd in marked.items()
        if server in cmd and server not in marked.get(_parent(pid), b"")
    ]


@pytest.mark.parametrize("moment", ["server starting", "first worker starting"])
@pytest.mark.timeout(300)
def test_kill_9_while_the_pool_starts_leaves_no_process(
    moment: str, many_files: Path, tmp_path: Path
) -> None:
    """The narrow windows: the fork server still importing (its parent check
    must name the scan, not whoever adopted it), and a worker just forked,
    before it has unpickled anything (it must already die with the server).
    Three kills each, as soon as the moment is seen."""
    seen = _fork_server if moment == "server starting" else _pool_workers
    for _round in range(3):
        mark = uuid.uuid4().hex
        env = {**os.environ, **feedsvc_env(tmp_path, many_files), MARK: mark}
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "scan"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while not seen(mark):
                assert proc.poll() is None, "scan exited before the moment"
                assert time.monotonic() < deadline, ("never seen", moment, _marked(mark))
                time.sleep(0.002)
            _kill_and_wait_for_nothing_left(proc, mark, moment)
        finally:
            _clean_up(proc, mark)
        (tmp_path / "store.sqlite3").unlink(missing_ok=True)
