"""``feedsvc serve`` as an operator starts and stops it: ports, links, quiet stops.

Real servers on 127.0.0.1, port 0 (any free port), stopped by their own PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import RunningServer, feedsvc_env

# The grace period of serve (feedsvc/server.py): a stop that waited for it
# was not quiet, it killed a worker.
GRACE_SECONDS = 5


def scanned_env(tmp_path: Path, content: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, **feedsvc_env(tmp_path, content, server_workers="2", **extra)}
    subprocess.run(
        [sys.executable, "-m", "feedsvc", "scan"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return env


def serve_on(port: int, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_second_serve_on_the_same_port_is_refused(
    tmp_path: Path, content_dir: Path, serve
) -> None:
    first = serve(content_dir, "--no-watch")
    second = serve_on(first.port, {**os.environ, **feedsvc_env(tmp_path, content_dir)}, tmp_path)
    assert second.returncode == 1, second.stderr
    assert (
        f"cannot listen on 127.0.0.1 port {first.port}: "
        f"port {first.port} is already in use by another process"
    ) in second.stderr
    assert "Traceback" not in second.stderr and "watcher started" not in second.stderr
    # The first one still answers every request alone.
    for _ in range(10):
        assert requests.get(first.url + "/healthz", timeout=30).status_code == 200


def test_a_port_another_program_listens_on_with_reuseport_is_refused(
    tmp_path: Path, content_dir: Path
) -> None:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = serve_on(port, {**os.environ, **feedsvc_env(tmp_path, content_dir)}, tmp_path)
    assert done.returncode == 1, done.stderr
    assert f"port {port} is already in use by another process" in done.stderr


def links_of(url: str) -> dict[str, str]:
    feed = requests.get(url + "/feeds/all/all.json", timeout=30).json()
    return {
        "feed_url": feed["feed_url"],
        "home": feed["home_page_url"],
        "item": next(i["url"] for i in feed["items"] if "/items/" in i["url"]),
    }


def test_without_base_url_links_follow_the_port_serve_listens_on(
    tmp_path: Path, content_dir: Path
) -> None:
    env = {**os.environ, **feedsvc_env(tmp_path, content_dir, server_workers="2")}
    del env["FEEDSVC_SITE_BASE_URL"]
    server = RunningServer([], env, tmp_path)  # with its watcher: it writes the item urls
    try:
        server.wait_for_log(r"scan: 2 added")
        base = f"http://127.0.0.1:{server.port}"
        links = links_of(server.url)
        assert links["feed_url"] == f"{base}/feeds/all/all.json"
        assert links["home"] == f"{base}/"
        assert links["item"].startswith(f"{base}/items/")
        index = requests.get(server.url + "/", timeout=30).text
        assert f'href="{base}/feeds.opml"' in index
        assert "8080" not in index
        # The item page a link points at is served there.
        assert requests.get(links["item"], timeout=30).status_code == 200
    finally:
        server.stop()


def test_an_explicit_base_url_wins(tmp_path: Path, content_dir: Path) -> None:
    env = scanned_env(tmp_path, content_dir)
    server = RunningServer(["--no-watch"], env, tmp_path)
    try:
        links = links_of(server.url)
        assert links["feed_url"] == "https://news.example.com/feeds/all/all.json"
        assert links["item"].startswith("https://news.example.com/items/")
    finally:
        server.stop()


def start(env: dict[str, str], cwd: Path, *args: str) -> RunningServer:
    return RunningServer(list(args), env, cwd)


def stop(server: RunningServer, sig: int = signal.SIGTERM) -> tuple[int, float, str]:
    started = time.monotonic()
    server.proc.send_signal(sig)
    code = server.proc.wait(timeout=60)
    took = time.monotonic() - started
    server.stop()  # reads the rest of the log
    return code, took, "".join(server.log)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_idle_server_stops_at_once_without_a_warning(
    tmp_path: Path, content_dir: Path, sig: int
) -> None:
    env = scanned_env(tmp_path, content_dir)
    # The warning came in 4 stops of 7: stop it several times.
    for round_ in range(4):
        server = start(env, tmp_path, *(["--no-watch"] if round_ % 2 else []))
        assert requests.get(server.url + "/feeds/all/all.rss", timeout=30).status_code == 200
        code, took, log = stop(server, sig)
        assert code == 0, log
        assert " WARNING " not in log and "Killing" not in log, log
        assert " ERROR " not in log and "Traceback" not in log, log
        # Nothing waited for the grace period (the bound a loaded machine allows).
        assert took < GRACE_SECONDS, (took, log)


def big_site(root: Path, items: int, paragraph_bytes: int) -> None:
    paragraph = ("Slow readers still get every byte of this feed. " * 5000)[:paragraph_bytes]
    for n in range(items):
        (root / f"long-{n:03}.md").write_text(
            f"---\ntitle: Long read {n}\ndate: 2024-01-{1 + n % 28:02}\n---\n{paragraph}\n",
            encoding="utf-8",
        )


def test_a_busy_server_finishes_the_request_in_flight(tmp_path: Path, content_dir: Path) -> None:
    """A slow client reading a big feed when SIGTERM comes still gets all of it."""
    big_site(content_dir, 40, 200_000)
    env = scanned_env(tmp_path, content_dir, feeds_max_items="100")
    server = start(env, tmp_path, "--no-watch")
    whole = requests.get(server.url + "/feeds/all/all.json", timeout=60).content
    assert len(whole) > 8_000_000  # more than the socket buffers hold

    with socket.socket() as slow:
        # A fixed, small window: the kernel buffers hold far less than the answer.
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        slow.connect(("127.0.0.1", server.port))
        slow.sendall(
            b"GET /feeds/all/all.json HTTP/1.1\r\nHost: feedsvc\r\nConnection: close\r\n\r\n"
        )
        received = bytearray(slow.recv(4096))
        assert received.startswith(b"HTTP/1.1 200")
        # The answer is being written: now stop the server, and read on slowly.
        server.proc.send_signal(signal.SIGTERM)
        slow.settimeout(30)
        while chunk := slow.recv(65536):
            received += chunk
            time.sleep(0.005)  # slowly: the answer takes a second or more to send
    code = server.proc.wait(timeout=60)
    server.stop()
    log = "".join(server.log)
    _, _, body = bytes(received).partition(b"\r\n\r\n")
    assert body == whole, (len(body), len(whole))
    assert json.loads(body)["items"]
    assert code == 0, log
    assert "Killing" not in log and " WARNING " not in log, log
