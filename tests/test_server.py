"""``feedsvc serve`` as a process: readiness on port 0, graceful stops, no process left behind.

A soak test: the server is started and stopped many times on 127.0.0.1,
some stops under concurrent keep-alive load, some during start-up, by
SIGTERM and by SIGINT. Every stop must exit 0 within a bound, and no process
of that server (workers, watcher) may outlive it.
"""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import child_pids, feedsvc_env

TOKEN = "soak-refresh-token-0123456789"
FEED = "/feeds/all/all.rss"
# Graceful stop plus the worker kill timeout and the watcher's stop, with room
# for a loaded machine: still far below what a process manager would wait.
STOP_BOUND_SECONDS = 15.0
START_BOUND_SECONDS = 60.0


def _alive(pid: int) -> bool:
    """Running (not merely a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _catches(pid: int, sig: signal.Signals) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) & (1 << (sig - 1)))


def _marked(mark: str) -> set[int]:
    """Live processes whose environment carries ``mark``: the server and all it started."""
    needle = f"SERVE_SOAK_MARK={mark}".encode()
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and _alive(int(entry.name)):
            found.add(int(entry.name))
    return found


@dataclass
class Served:
    proc: subprocess.Popen[str]
    lines: list[str]
    pump: threading.Thread
    mark: str
    port: int = 0

    def wait_listening(self) -> int:
        deadline = time.monotonic() + START_BOUND_SECONDS
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line):
                    self.port = int(match.group(1))
                    return self.port
            assert self.proc.poll() is None, "server exited:\n" + "".join(self.lines)
            time.sleep(0.02)
        raise AssertionError("no Listening line:\n" + "".join(self.lines))

    def wait_catching_stops(self) -> None:
        """Until the process handles SIGTERM (its caught-signals mask in /proc)."""
        deadline = time.monotonic() + START_BOUND_SECONDS
        while not _catches(self.proc.pid, signal.SIGTERM):
            assert self.proc.poll() is None, "server exited:\n" + "".join(self.lines)
            assert time.monotonic() < deadline, "SIGTERM never handled"
            time.sleep(0.002)

    def stop(self, sig: int) -> tuple[int, float]:
        """Send ``sig``; return the exit code and how long the exit took."""
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout=STOP_BOUND_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"no exit {STOP_BOUND_SECONDS} s after {sig!r}") from None
        return code, time.monotonic() - started

    def kill(self) -> None:
        """Last resort after a failed test: the server and everything it started."""
        for pid in _marked(self.mark):
            os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def start_server(tmp_path: Path, content_dir: Path) -> Iterator[object]:
    """Start servers on one scanned store; each is stopped after the test, children too."""
    base = {
        **os.environ,
        **feedsvc_env(tmp_path, content_dir, server_workers="2", server_refresh_token=TOKEN),
    }
    subprocess.run(
        [sys.executable, "-m", "feedsvc", "scan"],
        env=base,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    started: list[Served] = []

    def start(*args: str) -> Served:
        mark = uuid.uuid4().hex
        env = {**base, "SERVE_SOAK_MARK": mark}
        proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "serve", "--host", "127.0.0.1", "--port", "0", *args],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        lines: list[str] = []

        def pump() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                lines.append(line)

        thread = threading.Thread(target=pump, daemon=True)
        thread.start()
        served = Served(proc, lines, thread, mark)
        started.append(served)
        return served

    yield start
    for served in started:
        served.kill()
        served.pump.join(timeout=30)
        if served.proc.stderr is not None:
            served.proc.stderr.close()


class KeepAliveLoad:
    """Threads each sending requests on one kept-alive connection, plus idle connections."""

    def __init__(self, port: int, busy: int = 6, idle: int = 4) -> None:
        self._port = port
        self._stop = threading.Event()
        self.answered = 0
        self.statuses: set[int] = set()
        self._lock = threading.Lock()
        self._idle = [self._connect() for _ in range(idle)]
        for conn in self._idle:
            conn.request("GET", FEED)
            conn.getresponse().read()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(busy)]
        for thread in self._threads:
            thread.start()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self._port, timeout=10)

    def _run(self) -> None:
        conn = self._connect()
        headers = {"Accept-Encoding": "gzip"}
        try:
            while not self._stop.is_set():
                conn.request("GET", FEED, headers=headers)
                response = conn.getresponse()
                response.read()
                with self._lock:
                    self.answered += 1
                    self.statuses.add(response.status)
        except (OSError, http.client.HTTPException):
            return  # the server is stopping: refused, reset or closed
        finally:
            conn.close()

    def wait_answered(self, count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.answered < count and time.monotonic() < deadline:
            time.sleep(0.01)
        assert self.answered >= count, self.answered

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
            assert not thread.is_alive(), "a client is still blocked on the stopped server"
        for conn in self._idle:
            conn.close()
        assert self.statuses <= {200}, self.statuses


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


# (extra args, signal, when): "ready" stops after the Listening line, "load"
# under keep-alive load, "early" before the server is ready (workers forking).
ROUNDS = [
    ((), signal.SIGTERM, "ready"),
    (("--no-watch",), signal.SIGTERM, "load"),
    ((), signal.SIGINT, "ready"),
    ((), signal.SIGTERM, "early"),
    ((), signal.SIGTERM, "load"),
    (("--no-watch",), signal.SIGINT, "load"),
    (("--no-watch",), signal.SIGTERM, "ready"),
    ((), signal.SIGINT, "early"),
    ((), signal.SIGTERM, "load"),
    (("--no-watch",), signal.SIGTERM, "early"),
    ((), signal.SIGINT, "load"),
    ((), signal.SIGTERM, "ready"),
    (("--no-watch",), signal.SIGTERM, "load"),
    ((), signal.SIGTERM, "early"),
    ((), signal.SIGTERM, "load"),
]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_start_and_stop_many_times_leaves_nothing_behind(start_server) -> None:
    for number, (args, sig, when) in enumerate(ROUNDS, 1):
        where = f"round {number} ({' '.join(args) or 'watch'}, {sig.name}, {when})"
        served = start_server(*args)
        load: KeepAliveLoad | None = None
        if when == "early":
            # From the first instant feedsvc's own code runs (the Python interpreter's
            # start before it is no program's to handle), somewhere in start-up.
            served.wait_catching_stops()
            time.sleep(0.2 * (number % 5))
        else:
            port = served.wait_listening()
            # Logged only once a request is served: no retry, no waiting.
            status, body = _get(port, "/healthz")
            assert status == 200, (where, status, body)
            if when == "load":
                load = KeepAliveLoad(port)
                load.wait_answered(200)
        try:
            children = child_pids(served.proc.pid)
            if when != "early":
                watchers = 0 if "--no-watch" in args else 1
                assert len(children) == 2 + watchers, (where, children)
            code, took = served.stop(sig)
        finally:
            if load is not None:
                load.close()
        served.pump.join(timeout=30)
        log = "".join(served.lines)
        assert code == 0, (where, code, log)
        assert took < STOP_BOUND_SECONDS, (where, took)
        deadline = time.monotonic() + 5
        while (_marked(served.mark) or any(map(_alive, children))) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _marked(served.mark), (where, "left behind", _marked(served.mark), log)
        assert not any(map(_alive, children)), (where, children)
        if when != "early":
            assert len(re.findall(r"Listening at: ", log)) == 1, (where, log)
        assert TOKEN not in log
        assert "Traceback" not in log, (where, log)


def test_a_stop_while_serve_imports_its_modules_ends_it_with_exit_0(
    tmp_path: Path, content_dir: Path
) -> None:
    """docs/cli.md: a stop while ``serve`` starts ends it with exit 0, also one that
    comes before its modules are imported (a second on a loaded machine)."""
    # SIGTERM sent by the process to itself as it imports its settings module.
    script = (
        "import os, runpy, signal, sys\n"
        "def hook(event, args):\n"
        "    if event == 'import' and args[0] == 'feedsvc.settings':\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "sys.argv = ['feedsvc', 'serve', '--host', '127.0.0.1', '--port', '0']\n"
        "sys.addaudithook(hook)\n"
        "runpy.run_module('feedsvc', run_name='__main__', alter_sys=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, **feedsvc_env(tmp_path, content_dir)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.returncode, done.stderr)
    assert "Listening at" not in done.stderr
    assert "Traceback" not in done.stderr


def test_listening_line_names_the_real_port_and_one_watcher(start_server) -> None:
    served = start_server()
    port = served.wait_listening()
    assert port != 0
    status, body = _get(port, FEED)
    assert status == 200, body
    commands = [
        Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        for pid in child_pids(served.proc.pid)
    ]
    watchers = [c for c in commands if b"watch" in c]
    assert len(watchers) == 1, commands
    assert len(commands) == 3, commands  # two workers and the watcher
    code, _ = served.stop(signal.SIGTERM)
    assert code == 0


def test_a_killed_server_takes_its_workers_along(start_server) -> None:
    """Even SIGKILL, which no handler sees, leaves no worker serving on."""
    served = start_server()
    served.wait_listening()
    children = child_pids(served.proc.pid)
    assert len(children) == 3, children  # two workers and the watcher
    served.proc.kill()
    served.proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while any(map(_alive, children)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(_alive, children)), children


def test_a_port_held_by_another_program_is_refused(tmp_path: Path, content_dir: Path) -> None:
    """Workers share the port among themselves only: a port in use stops start-up."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "feedsvc", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **feedsvc_env(tmp_path, content_dir)},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    assert f"cannot listen on 127.0.0.1 port {port}" in done.stderr
    assert "Traceback" not in done.stderr
    assert "watcher started" not in done.stderr
