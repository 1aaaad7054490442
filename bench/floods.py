"""Idle-connection floods: a normal request's latency while one client holds 2,000 idle connections.

Two ``feedsvc serve`` runs on the same content, in the same run: "unprotected"
with granian's default connection limits (backlog 1024, 512 connections per
worker), and "protected" with feedsvc's defaults (``server.max_connections``,
``server.backlog``). In each, one flooding thread keeps ``--idle`` plain TCP
connections open (it reopens any the server closes), and a measuring client
then times ``--requests`` normal requests, each on a new connection. Prints
p50/p99 for both and the ratio. Every server is started here, on 127.0.0.1,
and stopped by its own PID.

    python -m bench.floods [--idle 2000] [--requests 300]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

FEED = "/feeds/all/all.rss"
UNPROTECTED = {"FEEDSVC_SERVER_MAX_CONNECTIONS": "512", "FEEDSVC_SERVER_BACKLOG": "1024"}
SAMPLES = Path(__file__).resolve().parent.parent / "tests" / "data" / "content"


def _raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def _server(root: Path, env_extra: dict[str, str]) -> Iterator[int]:
    port = _free_port()
    empty = root / "empty.toml"
    empty.write_text("", encoding="utf-8")
    env = {
        **os.environ,
        "FEEDSVC_CONFIG": str(empty),
        "FEEDSVC_CONTENT_PATH": str(root / "content"),
        "FEEDSVC_STORE_URL": f"sqlite:///{root / 'store.sqlite3'}",
        "FEEDSVC_SERVER_WORKERS": "2",
        **env_extra,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "feedsvc", "serve", "--no-watch", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(port)[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("feedsvc serve did not start")
            time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _get(port: int, timeout: float = 60) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", FEED)
        response = conn.getresponse()
        response.read()
        return response.status, (time.perf_counter() - started) * 1000
    finally:
        conn.close()


class IdleFlood:
    """``count`` idle TCP connections to ``port``, reopened as the server closes them."""

    def __init__(self, port: int, count: int) -> None:
        self._port = port
        self._count = count
        self._stop = threading.Event()
        self._ready = threading.Event()
        self.reopened = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(120)

    def _open(self, sel: selectors.BaseSelector) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            sock.connect(("127.0.0.1", self._port))
        sel.register(sock, selectors.EVENT_READ)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        for _ in range(self._count):
            self._open(sel)
        self._ready.set()
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:  # closed by the server: open another
                    sel.unregister(sock)
                    sock.close()
                    self._open(sel)
                    self.reopened += 1
        for key in list(sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        sel.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _measure(port: int, idle: int, requests: int) -> tuple[float, float, int]:
    for _ in range(20):  # warm up both workers' feed caches
        _get(port)
    flood = IdleFlood(port, idle)
    try:
        time.sleep(1.0)  # let the server accept what it will
        times = []
        for _ in range(requests):
            status, ms = _get(port)
            assert status == 200, status
            times.append(ms)
    finally:
        flood.close()
    times.sort()
    p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
    return statistics.median(times), p99, flood.reopened


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    _raise_fd_limit(4 * args.idle + 1024)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(SAMPLES, root / "content")
        empty = root / "empty.toml"
        empty.write_text("", encoding="utf-8")
        subprocess.run(
            [sys.executable, "-m", "feedsvc", "scan"],
            env={
                **os.environ,
                "FEEDSVC_CONFIG": str(empty),
                "FEEDSVC_CONTENT_PATH": str(root / "content"),
                "FEEDSVC_STORE_URL": f"sqlite:///{root / 'store.sqlite3'}",
            },
            check=True,
            capture_output=True,
        )
        for name, extra in (("unprotected", UNPROTECTED), ("protected", {})):
            with _server(root, extra) as port:
                results[name] = _measure(port, args.idle, args.requests)
            p50, p99, reopened = results[name]
            print(
                f"{name:12} {args.idle} idle connections: p50 {p50:8.1f} ms  p99 {p99:8.1f} ms"
                f"  (idle connections reopened: {reopened})"
            )
    ratio = results["unprotected"][1] / results["protected"][1]
    print(f"p99 unprotected / protected: {ratio:.1f}x")


if __name__ == "__main__":
    main()
