"""``feedsvc serve``'s watcher: started, watched, restarted with backoff, reported.

Owns the watcher process's life under ``serve``: it is ``feedsvc watch`` in a
fresh interpreter, told which process supervises it so that it dies with
that process; when it dies, the death is logged and reported (``health``),
and it is started again after a delay that doubles up to
``MAX_BACKOFF_SECONDS`` and starts over once a watcher has run for that long.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from feedsvc.settings import Settings

if TYPE_CHECKING:
    from feedsvc.health import SupervisorReport
    from feedsvc.store import Store

log = logging.getLogger(__name__)

# In the watcher's environment: the PID it must die with (see ``watcher.run_watcher``).
# Not a FEEDSVC_ name: those are all settings.
PARENT_ENV = "_FEEDSVC_SUPERVISOR_PID"
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0
STOP_SECONDS = 5


def exit_reason(returncode: int) -> str:
    """How a process ended, for people: "was killed by signal 9 (SIGKILL)"."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "unknown"
        return f"was killed by signal {-returncode} ({name})"
    return f"exited with status {returncode}"


class WatcherSupervisor:
    """One watcher process, kept running until ``stop``."""

    def __init__(self, settings: Settings, argv: list[str], env: dict[str, str]) -> None:
        self._settings = settings
        self._argv = argv
        self._env = {**env, PARENT_ENV: str(os.getpid())}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._proc = self._spawn()
        self._started_at = time.monotonic()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self._argv, env=self._env)

    def watch_in_background(self) -> None:
        """Start watching; call once no more processes are forked from this one."""
        self._thread = threading.Thread(target=self._run, name="feedsvc-supervisor", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Imported here: `feedsvc serve` must reach its signal handlers quickly,
        # and this thread starts once the web workers are up.
        from feedsvc.health import SupervisorReport

        self._report(SupervisorReport(at=_now(), running=True, pid=self._proc.pid))
        backoff = FIRST_BACKOFF_SECONDS
        restarts = 0
        while not self._stopping.is_set():
            returncode = self._proc.poll()
            if returncode is None:
                self._stopping.wait(0.1)
                continue
            if self._stopping.is_set():
                return
            if time.monotonic() - self._started_at >= MAX_BACKOFF_SECONDS:
                backoff = FIRST_BACKOFF_SECONDS  # it ran a good while: start over
            reason = exit_reason(returncode)
            dead = self._proc.pid
            log.error("watcher (pid %s) %s; restarting it in %g s", dead, reason, backoff)
            now = _now()
            self._report(
                SupervisorReport(
                    at=now,
                    running=False,
                    pid=dead,
                    reason=reason,
                    restart_at=now + timedelta(seconds=backoff),
                    restarts=restarts,
                )
            )
            if self._stopping.wait(backoff):
                return
            with self._lock:
                if self._stopping.is_set():
                    return
                self._proc = self._spawn()
                self._started_at = time.monotonic()
            restarts += 1
            log.info("watcher restarted (pid %s)", self._proc.pid)
            self._report(
                SupervisorReport(
                    at=_now(), running=True, pid=self._proc.pid, reason=reason, restarts=restarts
                )
            )
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    def _report(self, report: SupervisorReport) -> None:
        from feedsvc.errors import StoreError
        from feedsvc.health import SERVE, HealthBoard
        from feedsvc.store import open_store

        try:
            if self._store is None:
                self._store = open_store(self._settings.store.url)
            HealthBoard(self._store, self._settings.store.url).write(SERVE, report)
        except StoreError as exc:
            log.warning("cannot report the watcher's state: %s", exc)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            proc = self._proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=STOP_SECONDS)
        if self._store is not None:
            self._store.close()


def _now() -> datetime:
    return datetime.now(UTC)
