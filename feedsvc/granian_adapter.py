"""The one place feedsvc touches granian; owns no serving policy (that is ``server.py``).

granian has no public hooks for what ``feedsvc serve`` needs (docs/deployment.md):
holding the stop signals back while workers are forked, a readiness check once
they are, and its own way of stopping workers. So its process manager
(``MPServer``) is subclassed here, and each internal it relies on is touched in
exactly one place below:

- ``MPServer.startup(spawn_target, target_loader)``: overridden to run
  ``Hooks.forking`` around it and ``Hooks.started`` after it;
- ``MPServer._stop_workers()``: overridden to hand the workers to
  ``Hooks.stop_workers``; ``wrks`` is the list of granian's worker objects;
- a worker's ``idx`` (0-based), ``inner`` (its ``multiprocessing.Process``),
  ``terminate()``, ``kill()``, ``join()``: read by ``Worker`` only;
- ``interrupt_signal`` (a stop was asked for) and ``main_loop_interrupt`` (the
  main loop's wake-up event): read by ``GranianServer`` only;
- the logger names ``_granian`` and ``granian.access``, and granian's
  "Listening at" line: in ``LOG_CONFIG`` only.

The version is pinned in pyproject.toml; tests/test_granian_adapter.py fails,
naming what moved, when an upgrade changes any of these.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from granian.constants import HTTPModes, Interfaces, RuntimeModes
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server.mp import MPServer

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

GRANIAN_LOGGER = "_granian"
ACCESS_LOGGER = "granian.access"
# granian logs this before any worker listens; feedsvc logs its own once one answers.
GRANIAN_LISTENING = "Listening at"


class _NotYetListening(logging.Filter):
    """Drops granian's "Listening at" line: it comes before any worker listens."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(GRANIAN_LISTENING)


# granian's loggers go through the root logger set up by the CLI (stderr,
# our format); no access log.
LOG_CONFIG: dict[str, Any] = {
    "filters": {"not_yet_listening": {"()": _NotYetListening}},
    "loggers": {
        GRANIAN_LOGGER: {"handlers": [], "propagate": True, "filters": ["not_yet_listening"]},
        ACCESS_LOGGER: {"handlers": [], "propagate": True, "level": "WARNING"},
    },
}


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What ``server.py`` decides about granian's process manager."""

    address: str  # an IP literal: granian resolves no names
    port: int
    workers: int
    blocking_threads: int  # WSGI threads per worker
    backlog: int
    backpressure: int  # connections one worker holds, idle or not
    header_read_milliseconds: int
    kill_seconds: int  # granian's own grace period, for workers it respawns


@dataclass(frozen=True, slots=True)
class Worker:
    """One worker process of granian's main process (a granian ``WorkerProcess``)."""

    process: Any

    @property
    def number(self) -> int:
        """As granian's log lines name it: ``worker-1`` is ``idx`` 0."""
        return int(self.process.idx) + 1

    @property
    def pid(self) -> int:
        return int(self.process.inner.pid)

    @property
    def sentinel(self) -> int:
        """Ready for ``multiprocessing.connection.wait`` once the process has ended."""
        return int(self.process.inner.sentinel)

    def terminate(self) -> None:
        """SIGTERM; granian's own watcher thread then knows the stop was asked for."""
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def join(self) -> None:
        self.process.join()


class Hooks(Protocol):
    """What feedsvc runs inside granian's main process."""

    def forking(self) -> AbstractContextManager[object]:
        """Held while granian starts up and forks its workers."""

    def started(self, interrupt: threading.Event) -> None:
        """Every worker is forked; ``interrupt`` is set when the main loop should wake."""

    def stop_workers(self, workers: tuple[Worker, ...]) -> None:
        """Stop and reap every worker; called once, on the way out."""


class _HookedMPServer(MPServer):
    """granian's process manager with the two overrides, and nothing else."""

    def __init__(self, hooks: Hooks, options: ServerOptions) -> None:
        super().__init__(
            "feedsvc.web:create_app",  # informative only: the app comes from the loader
            address=options.address,
            port=options.port,
            interface=Interfaces.WSGI,
            workers=options.workers,
            blocking_threads=options.blocking_threads,
            runtime_mode=RuntimeModes.st,  # measured best on this app (bench/README.md)
            http=HTTPModes.http1,
            http1_settings=HTTP1Settings(header_read_timeout=options.header_read_milliseconds),
            websockets=False,
            log_level=LogLevels.info,
            log_dictconfig=LOG_CONFIG,
            log_access=False,
            respawn_failed_workers=True,
            workers_kill_timeout=options.kill_seconds,
            backlog=options.backlog,
            backpressure=options.backpressure,
        )
        self._hooks = hooks

    def startup(self, spawn_target: Any, target_loader: Any) -> None:
        with self._hooks.forking():
            super().startup(spawn_target, target_loader)  # type: ignore[no-untyped-call]
        self._hooks.started(self.main_loop_interrupt)

    def _stop_workers(self) -> None:
        self._hooks.stop_workers(tuple(Worker(process) for process in self.wrks))
        self.wrks.clear()


class GranianServer:
    """granian's main process, forking ``options.workers`` workers, with ``hooks`` in it."""

    def __init__(self, hooks: Hooks, options: ServerOptions) -> None:
        self._server = _HookedMPServer(hooks, options)

    def serve(self, load_app: Callable[[], WSGIApplication]) -> int:
        """Serve until stopped; granian's exit status (0, or 1 after a worker failed).

        ``load_app`` runs in each freshly forked worker, before granian installs
        its signal handlers there.
        """
        try:
            self._server.serve(target_loader=load_app, wrap_loader=False)
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        return 0

    @property
    def stop_requested(self) -> bool:
        """SIGTERM or SIGINT reached this process (granian's own handler saw it)."""
        return bool(self._server.interrupt_signal)
