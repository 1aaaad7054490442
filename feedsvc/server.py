"""``feedsvc serve``: gunicorn for the web, one watcher process beside it.

Owns process layout: gunicorn's master forks ``server.workers`` workers,
each building its own app (and store connections) after the fork; the
watcher runs in ONE separate process, so the scheduler exists exactly once
however many workers serve. The scan lock makes a second deployment's
watcher wait rather than scan at the same time.

Server choice (issue #3, bench/README.md): granian served 2-4x gunicorn's
requests/s on this app, but under the test suite its main process sometimes
did not stop on SIGTERM and left workers behind, so gunicorn stays until that
is understood.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from feedsvc.settings import Settings

log = logging.getLogger(__name__)


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self._settings = settings
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from feedsvc.web import SERVER_RECHECK_SECONDS, create_app

        return create_app(self._settings, recheck_seconds=SERVER_RECHECK_SECONDS)


def _start_watcher(config: str | None) -> subprocess.Popen[bytes]:
    """``feedsvc watch`` as a child process with the same config and environment.

    A fresh interpreter, not a fork (no copy of any lock or connection) and not
    multiprocessing: gunicorn forks its workers from this process, and a
    multiprocessing child would be "joined" by every worker's exit handlers.
    """
    argv = [sys.executable, "-m", "feedsvc", "watch"]
    if config is not None:
        argv += ["--config", config]
    return subprocess.Popen(argv)


def serve(
    settings: Settings, *, host: str, port: int, watch: bool, config: str | None = None
) -> int:
    main_pid = os.getpid()
    watcher = None
    if watch:
        watcher = _start_watcher(config)
        log.info("watcher started (pid %s)", watcher.pid)
    options = {
        "bind": f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "workers": settings.server.workers,
        "worker_class": "gthread",
        "threads": 8,
        "timeout": 120,
        "graceful_timeout": 10,
        "keepalive": 5,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "feedsvc",
        # Worker recycling bounds memory growth over months of uptime.
        "max_requests": 100_000,
        "max_requests_jitter": 10_000,
        "limit_request_line": 8190,
        "limit_request_fields": 100,
        "limit_request_field_size": 8190,
        # No control socket: it is one fixed path per user, shared by every instance.
        "control_socket_disable": True,
    }
    try:
        _Gunicorn(settings, options).run()
    finally:
        # gunicorn's workers are forks of this process and leave through this
        # frame too: only the main process owns the watcher.
        if watcher is not None and os.getpid() == main_pid and watcher.poll() is None:
            watcher.terminate()
            try:
                watcher.wait(timeout=10)
            except subprocess.TimeoutExpired:
                watcher.kill()
                watcher.wait()
    return 0
