"""Serving figures: wrk against ``feedsvc serve``, and nginx on the same bytes.

Every server is started here, on 127.0.0.1, and stopped by its own PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FEED = "/feeds/all/all.rss"
GZIP = {"Accept-Encoding": "gzip"}


@dataclass(frozen=True, slots=True)
class WrkResult:
    rps: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                r.read()
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def get_header(url: str, headers: dict[str, str], name: str) -> str:
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as r:
        r.read()
        value = r.headers.get(name)  # case-insensitive: granian sends lowercase names
        if value is None:
            raise RuntimeError(f"{url}: no {name} header")
        return str(value)


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if m is None:
        raise ValueError(text)
    factor = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[m.group(2)]
    return float(m.group(1)) * factor


def wrk(url: str, headers: dict[str, str], *, seconds: int, connections: int = 32) -> WrkResult:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 30
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)$", out, re.M).group(1))  # type: ignore[union-attr]
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(errs.group(1)) if errs else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    return WrkResult(rps, p99, errors)


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    base: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)


def _spawn(name: str, cmd: list[str], env: dict[str, str], port: int, log: Path) -> Server:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + FEED)
    except OSError:
        proc.kill()
        raise RuntimeError(f"{name} did not start; see {log}") from None
    return Server(name, proc, base)


def python_servers(work: Path, env: dict[str, str], workers: int) -> dict[str, list[str]]:
    """The Python servers measured, each with ``workers`` processes (``server.workers``).

    ``feedsvc serve`` is the real command as shipped, without its watcher: the
    watcher's start-up scan would share the CPUs with the measurement. gunicorn
    gthread (what ``feedsvc serve`` ran before granian) and waitress (one
    process: it has no worker processes, only threads) are measured beside it
    when they are installed, for the record of the server choice.
    """
    py = sys.executable
    servers = {
        "feedsvc serve": [
            py, "-m", "feedsvc", "serve", "--no-watch", "--host", "127.0.0.1", "--port", "{port}",
        ],
    }  # fmt: skip
    gunicorn = Path(py).parent / "gunicorn"
    if gunicorn.exists():
        servers["gunicorn gthread (before)"] = [
            str(gunicorn),
            "-w", str(workers), "-k", "gthread", "--threads", "8",
            "-b", "127.0.0.1:{port}", "bench.apps:app",
        ]  # fmt: skip
    waitress = Path(py).parent / "waitress-serve"
    if waitress.exists():
        servers["waitress (1 process, 8 threads)"] = [
            str(waitress), "--host", "127.0.0.1", "--port", "{port}", "--threads", "8",
            "bench.apps:app",
        ]  # fmt: skip
    return servers


def start_python(name: str, cmd: list[str], env: dict[str, str], work: Path) -> Server:
    port = free_port()
    full = [part.replace("{port}", str(port)) for part in cmd]
    return _spawn(name, full, {**env, "PYTHONPATH": str(Path.cwd())}, port, work / f"{name}.log")


def start_nginx(work: Path, feed_body: bytes, feed_gzip: bytes, workers: int) -> Server:
    """nginx serving the very bytes feedsvc serves, as a static file with gzip_static."""
    root = work / "nginx" / "root"
    (root / "feeds" / "all").mkdir(parents=True, exist_ok=True)
    target = root / "feeds" / "all" / "all.rss"
    target.write_bytes(feed_body)
    Path(str(target) + ".gz").write_bytes(feed_gzip)
    os.utime(str(target) + ".gz", ns=(target.stat().st_mtime_ns,) * 2)
    port = free_port()
    conf = work / "nginx" / "nginx.conf"
    conf.write_text(
        f"""daemon off;
worker_processes {workers};
pid {work / "nginx" / "nginx.pid"};
error_log {work / "nginx" / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work / "nginx"};
  proxy_temp_path {work / "nginx"};
  fastcgi_temp_path {work / "nginx"};
  uwsgi_temp_path {work / "nginx"};
  scgi_temp_path {work / "nginx"};
  types {{ application/rss+xml rss; }}
  charset utf-8;
  charset_types application/rss+xml;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    gzip_static on;
    gzip_vary on;
    etag on;
    add_header Cache-Control "public, max-age=300";
    add_header Access-Control-Allow-Origin "*";
    add_header X-Content-Type-Options nosniff;
  }}
}}
""",
        encoding="utf-8",
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return _spawn("nginx", [nginx, "-c", str(conf)], dict(os.environ), port, work / "nginx.log")


@contextlib.contextmanager
def running(servers: list[Server]) -> Iterator[list[Server]]:
    try:
        yield servers
    finally:
        for s in servers:
            s.stop()


def scenarios(server: Server) -> dict[str, dict[str, str]]:
    """wrk headers for: 200 identity, 200 gzip, 304 (the gzip ETag, as a reader sends it)."""
    etag = get_header(server.base + FEED, GZIP, "ETag")
    return {"200": {}, "200 gzip": dict(GZIP), "304": {**GZIP, "If-None-Match": etag}}
