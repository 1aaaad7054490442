"""Shared fixtures: sample content, settings, and stores on SQLite and PostgreSQL.

PostgreSQL tests use ``TEST_PG_URL`` (``.ci/run`` sets it and starts
the server). Without it they are skipped locally, but on CI (``CI=true``) a
missing PostgreSQL is an error, never a skip.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from feedsvc.settings import Settings, load_settings

DATA = Path(__file__).parent / "data"
SAMPLES = DATA / "content"
SAMPLE_FRONTMATTER = SAMPLES / "000_a08af95bc486be6a.txt"
SAMPLE_TRANSCRIPT = SAMPLES / "002_ad53fbf95e7bb634.txt"


def write_in_two_parts(path: Path, text: str, cut: int, pause: float) -> None:
    """Write ``text`` to ``path`` in place, as a slow writer does: ``text[:cut]``,
    flushed and left half-written for ``pause`` seconds, then the rest."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text[:cut])
        handle.flush()
        time.sleep(pause)
        handle.write(text[cut:])


def wait_until(
    check: Callable[[], Any], what: str | Callable[[], str] = "", timeout: float = 90.0
) -> Any:
    """Poll ``check`` until it gives something truthy and return that; fail after
    ``timeout`` seconds, saying what was awaited (``what`` may build the text late)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(0.05)


def metric_samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A /metrics page as a scraper reads it: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def child_pids(pid: int) -> set[int]:
    """Direct children of ``pid``, from every thread's ``children`` list in /proc."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found.update(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return found


def pg_base_url() -> str | None:
    url = os.environ.get("TEST_PG_URL")
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail("CI=true but TEST_PG_URL is not set: PostgreSQL tests must run on CI")
    return None


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    base = pg_base_url()
    if base is None:
        pytest.skip("TEST_PG_URL not set (PostgreSQL tests run on CI)")
    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(base)
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL on each backend: the whole store suite runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def content_dir(tmp_path: Path) -> Path:
    """A writable copy of the two sample files."""
    root = tmp_path / "content"
    root.mkdir()
    for sample in (SAMPLE_FRONTMATTER, SAMPLE_TRANSCRIPT):
        shutil.copy2(sample, root / sample.name)
    return root


def feedsvc_env(
    tmp_path: Path, content: Path, store_url: str | None = None, **env: str
) -> dict[str, str]:
    """``FEEDSVC_*`` variables for a test site: its content, store and public URL.

    ``FEEDSVC_CONFIG`` points at an empty file, so the repo's own config never leaks in.
    Extra keywords become variables: ``server_refresh_token="x"`` ->
    ``FEEDSVC_SERVER_REFRESH_TOKEN=x``.
    """
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    return {
        "FEEDSVC_CONFIG": str(empty),
        "FEEDSVC_CONTENT_PATH": str(content),
        "FEEDSVC_STORE_URL": store_url or f"sqlite:///{tmp_path / 'store.sqlite3'}",
        "FEEDSVC_SITE_BASE_URL": "https://news.example.com",
        "FEEDSVC_SITE_ID_PREFIX": "tag:news.example.com,2024:",
        # Tests write a file and scan at once; the settle delay has its own tests.
        "FEEDSVC_CONTENT_SETTLE_SECONDS": "0",
        **{f"FEEDSVC_{k.upper()}": v for k, v in env.items()},
    }


@pytest.fixture
def make_settings(tmp_path: Path) -> object:
    """Build Settings from a mapping of ``FEEDSVC_*`` overrides, with no config file."""

    def make(content: Path, store_url: str | None = None, **env: str) -> Settings:
        return load_settings(None, environ=feedsvc_env(tmp_path, content, store_url, **env))

    return make


class RunningServer:
    """A real ``feedsvc serve`` process on 127.0.0.1 and an ephemeral port."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        import re
        import subprocess
        import sys
        import threading

        self.log: list[str] = []
        self._logged = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "feedsvc", "serve", "--host", "127.0.0.1", "--port", "0", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        found = threading.Event()
        self.port = 0

        def pump() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                with self._logged:
                    self.log.append(line)
                    self._logged.notify_all()
                match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)
                if match and not found.is_set():
                    self.port = int(match.group(1))
                    found.set()
            found.set()

        self._pump = threading.Thread(target=pump, daemon=True)
        self._pump.start()
        if not found.wait(60) or not self.port:
            self.stop()
            raise RuntimeError("server did not start:\n" + "".join(self.log))
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            self._wait_ready()
        except BaseException:
            self.stop()  # a server that never became ready must not outlive the test
            raise

    def wait_for_log(self, pattern: str, timeout: float = 60) -> str:
        """Block until the server logs a line matching ``pattern``; return it."""
        import re

        def seen() -> str | None:
            return next((line for line in self.log if re.search(pattern, line)), None)

        with self._logged:
            self._logged.wait_for(
                lambda: seen() is not None or self.proc.poll() is not None, timeout
            )
            line = seen()
        if line is None:
            raise AssertionError(f"no log line matching {pattern!r}:\n" + "".join(self.log))
        return line

    def _wait_ready(self) -> None:
        import requests

        # "Listening" is logged once a worker has answered; this checks the store too.
        requests.get(self.url + "/healthz", timeout=60)

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self._pump.join(timeout=30)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[object]:
    """Start real servers; every one is stopped (by its own PID) after the test."""
    started: list[RunningServer] = []

    def start(content: Path, *args: str, store_url: str | None = None, **env: str) -> RunningServer:
        environ = {
            **os.environ,
            **feedsvc_env(tmp_path, content, store_url, server_workers="2", **env),
        }
        server = RunningServer(list(args), environ, tmp_path)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


GOLDEN = Path(__file__).parent / "golden"


def assert_golden(path: Path, got: str) -> None:
    """Compare ``got`` with a reviewed golden file; ``UPDATE_GOLDENS=1`` rewrites it."""
    import difflib

    if os.environ.get("UPDATE_GOLDENS") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run with UPDATE_GOLDENS=1 and review it")
    want = path.read_text(encoding="utf-8")
    if got != want:
        diff = difflib.unified_diff(
            want.splitlines(), got.splitlines(), f"golden/{path.name}", "now", lineterm=""
        )
        pytest.fail(f"{path.name} differs from its golden:\n" + "\n".join(list(diff)[:200]))
