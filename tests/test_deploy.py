"""Deploying as users do (issue #7): several instances, a second watcher, a shared cache.

These run feedsvc from this checkout, as `feedsvc serve` runs outside a container;
tests/test_image.py builds the Dockerfile's image and runs the same set-ups from it.

- ``test_web_instances_*`` / ``test_second_watcher_*``: several ``feedsvc serve
  --no-watch`` and ``feedsvc watch`` processes on one PostgreSQL store; the second
  watcher is traced (a wrapper around the scan), which an image cannot be.
- ``test_nginx_*``: ``deploy/nginx.conf`` run by a real nginx in front of ``feedsvc serve``.

Every process is started here and stopped by its own PID. Locally a missing nginx or
PostgreSQL skips; on CI (``CI=true``) it fails.
"""

from __future__ import annotations

import gzip
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from conftest import feedsvc_env

REPO = Path(__file__).resolve().parent.parent
NGINX_SNIPPET = REPO / "deploy" / "nginx.conf"
TOKEN = "deploy-test-token"
FEED = "/feeds/all/all.rss"
NGINX_CLOCK = 1.0  # nginx reads the time in whole seconds: a copy may live 1 s longer


# -- helpers -------------------------------------------------------------------------


def require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI=true but {tool} is not installed (.ci/run installs it)")
        pytest.skip(f"{tool} is not installed (CI installs it)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def fetch(url: str, method: str = "GET", timeout: float = 30, **headers: str) -> Answer:
    """One request, no redirects, no decompression: bytes and headers as sent."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        wanted = {k.replace("_", "-"): v for k, v in headers.items()}
        conn.request(method, parts.path or "/", headers=wanted)
        response = conn.getresponse()
        body = response.read()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        conn.close()


def refresh(base_url: str) -> dict[str, Any]:
    # A scan, the first one loading the language models, on a machine maybe busy.
    answer = fetch(base_url + "/api/refresh", "POST", 120, Authorization=f"Bearer {TOKEN}")
    assert answer.status == 200, answer.body
    result: dict[str, Any] = json.loads(answer.body)
    return result


def wait_until(
    what: str, check: Callable[[], bool], timeout: float, step: float = 0.1, *logs: Proc
) -> float:
    """Poll ``check`` until true; return the seconds it took; fail after ``timeout``."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            shown = "".join(f"\n--- {' '.join(p.argv)[:80]}\n{p.log}" for p in logs)
            pytest.fail(f"{what}: not within {timeout:.1f} s{shown}")
        time.sleep(step)
    return time.monotonic() - started


def add_item(content: Path, n: int) -> str:
    """A new Markdown file; returns its title, which the feeds then carry."""
    title = f"Deploy check number {n}"
    (content / f"deploy-{n}.md").write_text(
        f"# {title}\n\nThe operators added this story to check that every instance "
        "and the cache serve the same feeds soon after a change.\n",
        encoding="utf-8",
    )
    return title


class Proc:
    """A child process whose stdout and stderr are collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.argv = argv
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pid = self.proc.pid
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()

    @property
    def log(self) -> str:
        with self._cond:
            return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        regex = re.compile(pattern)

        def seen() -> re.Match[str] | None:
            return next((m for line in self.lines if (m := regex.search(line))), None)

        with self._cond:
            self._cond.wait_for(lambda: seen() is not None or self.proc.poll() is not None, timeout)
            match = seen()
        if match is None:
            raise AssertionError(f"{self.argv}: no line matching {pattern!r}:\n{self.log}")
        return match

    def kill9(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._pump.join(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def procs() -> Iterator[Callable[..., Proc]]:
    """Start processes; each is stopped by its own PID after the test."""
    started: list[Proc] = []

    def start(argv: list[str], env: dict[str, str], cwd: Path) -> Proc:
        proc = Proc(argv, env, cwd)
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        proc.stop()


# -- several instances on one PostgreSQL ---------------------------------------------


def same_everywhere(urls: list[str], path: str = FEED) -> Answer:
    """Every instance answers ``path`` with the same bytes and ETag, plain and gzip."""
    first: Answer | None = None
    for encoding in ("identity", "gzip"):
        answers = [fetch(url + path, Accept_Encoding=encoding) for url in urls]
        assert all(a.status == 200 for a in answers), [a.status for a in answers]
        assert len({a.body for a in answers}) == 1, f"instances differ ({encoding})"
        assert len({a.header("ETag") for a in answers}) == 1, [a.header("ETag") for a in answers]
        if first is None:
            first = answers[0]
    assert first is not None
    return first


@pytest.mark.postgres
@pytest.mark.slow
def test_web_instances_on_one_postgres_serve_the_same_feeds(
    tmp_path: Path, content_dir: Path, pg_url: str, serve: Any
) -> None:
    webs = [
        serve(content_dir, "--no-watch", store_url=pg_url, server_refresh_token=TOKEN)
        for _ in range(3)
    ]
    urls = [web.url for web in webs]
    assert refresh(urls[0])["added"] == 2
    before = same_everywhere(urls)
    assert before.body.count(b"<item>") == 2

    # A change scanned through ONE instance reaches every other one at once: each
    # re-renders when it sees the store's generation move.
    title = add_item(content_dir, 1)
    assert refresh(urls[1])["added"] == 1
    after = same_everywhere(urls)
    assert title.encode() in after.body
    assert after.header("ETag") != before.header("ETag")
    # And with nothing changed, a rescan moves no ETag anywhere.
    assert refresh(urls[2])["added"] == 0
    assert same_everywhere(urls).header("ETag") == after.header("ETag")


# A watcher that logs when each scan starts and ends, and stays inside the scan lock
# longer (its first scan DEPLOY_TEST_FIRST_SCAN seconds, then a random while), so
# that two watchers would overlap if the lock let them.
TRACED_WATCHER = """
import os, random, sys, time
import feedsvc.pipeline as pipeline
real_scan = pipeline.run_scan
first = [float(os.environ["DEPLOY_TEST_FIRST_SCAN"])]
def traced(*args, **kwargs):
    print(f"SCAN-START {time.time():.6f}", file=sys.stderr, flush=True)
    try:
        time.sleep(first.pop() if first else random.uniform(0.1, 0.6))
        return real_scan(*args, **kwargs)
    finally:
        print(f"SCAN-END {time.time():.6f}", file=sys.stderr, flush=True)
pipeline.run_scan = traced
from feedsvc.cli import main
sys.exit(main(["watch"]))
"""


def scan_spans(proc: Proc) -> list[tuple[float, float]]:
    """(start, end) of each scan this watcher really ran."""
    starts = [float(m[1]) for m in re.finditer(r"SCAN-START (\S+)", proc.log)]
    ends = [float(m[1]) for m in re.finditer(r"SCAN-END (\S+)", proc.log)]
    return list(zip(starts, ends, strict=False))


def waits(proc: Proc) -> int:
    """Scheduled runs that found the other watcher scanning and shared its result."""
    runs = len(re.findall(r"feedsvc\.watcher: scan: ", proc.log))
    return runs - len(scan_spans(proc))


@pytest.mark.postgres
@pytest.mark.slow
def test_second_watcher_never_scans_at_the_same_time_and_takes_over(
    tmp_path: Path, content_dir: Path, pg_url: str, serve: Any, procs: Callable[..., Proc]
) -> None:
    web = serve(content_dir, "--no-watch", store_url=pg_url)
    env = {**os.environ, **feedsvc_env(tmp_path, content_dir, pg_url, watch_interval_seconds="1")}
    first = procs(
        [sys.executable, "-c", TRACED_WATCHER], {**env, "DEPLOY_TEST_FIRST_SCAN": "4"}, tmp_path
    )
    # The second watcher starts while the first holds the lock in its long first scan:
    # its own start-up scan is due then, and must wait instead of scanning alongside.
    first.wait_for(r"SCAN-START")
    # A second watcher on another interval leaves the first some turns: with equal
    # ones, a second watcher whose runs fall just before the first's can take the lock
    # every time, and the first (correctly) only ever shares the second's results.
    second = procs(
        [sys.executable, "-c", TRACED_WATCHER],
        {**env, "DEPLOY_TEST_FIRST_SCAN": "0.3", "FEEDSVC_WATCH_INTERVAL_SECONDS": "2"},
        tmp_path,
    )
    second.wait_for(r"feedsvc\.watcher: scan: ", timeout=30)
    assert waits(second) >= 1, second.log
    assert len(scan_spans(first)) == 1, first.log
    # Then both go on every second, taking turns on the lock.
    wait_until(
        "the first watcher scans again", lambda: len(scan_spans(first)) >= 3, 30, 0.1, first, second
    )
    assert b"<item>" in fetch(web.url + FEED).body

    # Kill -9 the first one, if we can catch it in the middle of a scan, holding the lock.
    wait_until(
        "the first watcher is inside a scan",
        lambda: first.log.count("SCAN-START") > first.log.count("SCAN-END"),
        timeout=30,
        step=0.01,
    )
    first.kill9()
    killed_at = time.time()

    spans = sorted(scan_spans(first) + scan_spans(second))
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end, f"two scans overlapped: {spans}"

    # The second watcher takes over: a new file reaches the feeds.
    title = add_item(content_dir, 2)
    wait_until(
        "the new file is in the feed after the first watcher died",
        lambda: title.encode() in fetch(web.url + FEED).body,
        timeout=30,
    )
    assert any(start > killed_at for start, _ in scan_spans(second)), second.log
    assert second.proc.poll() is None, second.log


# -- behind nginx's proxy_cache --------------------------------------------------------


def nginx_config(workdir: Path, listen_port: int, upstream: str) -> Path:
    """deploy/nginx.conf inside a minimal main config that runs in ``workdir``."""
    snippet = NGINX_SNIPPET.read_text(encoding="utf-8")
    for old, new in (
        ("server web:8080;", f"server {upstream};"),
        ("listen 80;", f"listen 127.0.0.1:{listen_port};"),
        ("/var/cache/nginx/feedsvc", str(workdir / "cache")),
    ):
        assert old in snippet, f"deploy/nginx.conf no longer has {old!r}"
        snippet = snippet.replace(old, new)
    (workdir / "feedsvc.conf").write_text(snippet, encoding="utf-8")
    temp = workdir / "temp"
    temp.mkdir()
    # Root's nginx would run its workers as nobody, who cannot enter pytest's tmp_path.
    user = "user root;" if os.geteuid() == 0 else ""
    main = f"""
daemon off;
{user}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log stderr notice;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {workdir}/feedsvc.conf;
}}
"""
    conf = workdir / "nginx.conf"
    conf.write_text(main, encoding="utf-8")
    return conf


@pytest.mark.slow
def test_nginx_proxy_cache_keeps_revalidates_and_serves_changes(  # noqa: PLR0915 - one scenario through a real proxy cache, step by step
    tmp_path: Path, content_dir: Path, serve: Any, procs: Callable[..., Proc]
) -> None:
    nginx = require("nginx")
    cache_seconds = 2
    upstream = serve(
        content_dir, server_refresh_token=TOKEN, feeds_cache_seconds=str(cache_seconds)
    )
    upstream.wait_for_log(r"scan: 2 added")

    workdir = tmp_path / "nginx"
    workdir.mkdir()
    port = free_port()
    conf = nginx_config(workdir, port, upstream.url.removeprefix("http://"))
    procs([nginx, "-e", "stderr", "-p", str(workdir), "-c", str(conf)], dict(os.environ), workdir)
    cache = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    wait_until("nginx listens", up, timeout=20)

    def get(encoding: str = "identity") -> Answer:
        answer = fetch(cache + FEED, Accept_Encoding=encoding)
        assert answer.status == 200, answer
        return answer

    # Repeated GETs are served from the cache; gzip and identity are two variants.
    filled = time.monotonic()
    plain = get()
    assert plain.header("X-Cache-Status") == "MISS"
    assert plain.header("Cache-Control") == f"public, max-age={cache_seconds}"
    assert plain.header("Vary") == "Accept, Accept-Encoding"
    zipped = get("gzip")
    assert zipped.header("X-Cache-Status") == "MISS", "the gzip variant is cached apart"
    assert zipped.header("Content-Encoding") == "gzip"
    assert gzip.decompress(zipped.body) == plain.body
    for encoding, first in (("identity", plain), ("gzip", zipped)):
        again = get(encoding)
        assert again.header("X-Cache-Status") == "HIT", encoding
        assert again.body == first.body
        assert again.header("ETag") == first.header("ETag")
    assert time.monotonic() - filled < cache_seconds, "too slow to observe HITs"
    # Operator answers are never kept.
    for _ in range(2):
        status = fetch(cache + "/api/status")
        assert status.header("X-Cache-Status") == "MISS"
        assert status.header("Cache-Control") == "no-store"

    # After max-age, nginx revalidates with the ETag; unchanged, feedsvc answers 304.
    # nginx's clock ticks in whole seconds, so a copy may live up to a second longer.
    bound = cache_seconds + NGINX_CLOCK + 0.5
    statuses: list[str] = []

    def expired() -> bool:
        answer = get()
        statuses.append(answer.header("X-Cache-Status"))
        assert answer.body == plain.body
        return statuses[-1] != "HIT"

    wait_until("the cached copy expires", expired, timeout=filled + bound - time.monotonic())
    assert statuses[-1] == "REVALIDATED", statuses

    # A change reaches readers through the cache within feeds.cache_seconds.
    title = add_item(content_dir, 3)
    assert refresh(upstream.url)["added"] == 1
    changed_at = time.monotonic()
    direct = fetch(upstream.url + FEED, Accept_Encoding="identity")
    assert title.encode() in direct.body
    statuses.clear()

    def fresh() -> bool:
        answer = get()
        statuses.append(answer.header("X-Cache-Status"))
        return answer.body == direct.body and answer.header("ETag") == direct.header("ETag")

    wait_until("the change passes the cache", fresh, timeout=bound)
    assert statuses[-1] == "EXPIRED", statuses
    assert time.monotonic() - changed_at <= bound
    new_zipped = get("gzip")
    assert gzip.decompress(new_zipped.body) == direct.body, new_zipped.header("X-Cache-Status")
