"""The granian internals ``feedsvc/granian_adapter.py`` relies on are still where it expects them.

Each test names the internal it checks, so a granian upgrade that moves one
fails here with that name rather than as a hung stop or a noisy log in the
real-server suites. The last test runs a real server through the adapter.
"""

from __future__ import annotations

import inspect
import multiprocessing.connection
import re
import threading
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import granian.log
from granian.server.common import AbstractServer
from granian.server.mp import MPServer, WorkerProcess

from feedsvc.granian_adapter import ACCESS_LOGGER, GRANIAN_LISTENING, GRANIAN_LOGGER, Worker

LOCKS = Path(__file__).parent.parent / "requirements"


def _parameters(function: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(function).parameters)


def _source(function: Callable[..., Any]) -> str:
    return inspect.getsource(function)


def test_the_installed_granian_is_the_locked_one() -> None:
    installed = f"granian=={version('granian')} "
    for lock in ("main.lock", "test.lock"):
        assert installed in (LOCKS / lock).read_text(), (
            f"granian {version('granian')} is not the version in requirements/{lock}: "
            "run tests/test_granian_adapter.py and the real-server suites before changing the pin"
        )


def test_startup_is_still_the_hook_that_forks_the_workers() -> None:
    assert _parameters(MPServer.startup) == ["self", "spawn_target", "target_loader"], (
        "granian changed MPServer.startup's signature: _HookedMPServer.startup must follow"
    )
    assert "self._spawn_workers(" in _source(AbstractServer.startup), (
        "granian no longer forks its workers in startup(): Hooks.forking holds nothing back"
    )
    assert "self.startup(" in _source(AbstractServer._serve), "granian's _serve skips startup()"


def test_stop_workers_is_still_called_on_shutdown_and_reads_wrks() -> None:
    assert _parameters(MPServer._stop_workers) == ["self"], (
        "granian changed MPServer._stop_workers: _HookedMPServer._stop_workers must follow"
    )
    assert "self._stop_workers()" in _source(AbstractServer.shutdown), (
        "granian's shutdown() no longer calls _stop_workers(): feedsvc's stop rule is bypassed"
    )
    assert "self.wrks" in _source(AbstractServer._spawn_workers), "granian renamed wrks"


def test_serve_still_takes_a_loader_called_with_no_arguments() -> None:
    assert {"target_loader", "wrap_loader"} <= set(_parameters(MPServer.serve)), (
        "granian's MPServer.serve lost target_loader or wrap_loader"
    )
    # Each worker calls the loader before it installs its own signal handlers.
    wrapper = _source(WorkerProcess.wrap_target)
    assert "callback = callback_loader()" in wrapper, "granian calls the app loader differently"


def test_the_stop_state_read_by_the_adapter_is_granians() -> None:
    init = _source(AbstractServer.__init__)
    for name in (
        "self.wrks",
        "self.main_loop_interrupt = threading.Event()",
        "self.interrupt_signal",
    ):
        assert name in init, f"granian's AbstractServer no longer sets {name}"
    handler = _source(AbstractServer.signal_handler_interrupt)
    assert "self.interrupt_signal = True" in handler, "granian's stop handler changed"
    assert "self.main_loop_interrupt.set()" in handler, "granian's stop handler changed"


def test_logger_names_and_the_early_listening_line() -> None:
    assert granian.log.logger.name == GRANIAN_LOGGER, "granian renamed its logger"
    assert granian.log.access_logger.name == ACCESS_LOGGER, "granian renamed its access logger"
    assert f"'{GRANIAN_LISTENING}: " in _source(AbstractServer.startup), (
        "granian's 'Listening at' line changed: LOG_CONFIG's filter no longer drops it"
    )


def test_a_real_granian_worker_seen_through_the_adapter() -> None:
    """``idx``, ``inner.pid``, ``inner.sentinel``, ``terminate``, ``join`` on a live process."""
    parent = SimpleNamespace(
        reload_on_changes=False, interrupt_children=[], main_loop_interrupt=threading.Event()
    )
    process = WorkerProcess(parent, 0, time.sleep, (60,))
    process.start()
    worker = Worker(process)
    assert worker.number == 1
    assert worker.pid == process.inner.pid > 0
    worker.terminate()
    assert multiprocessing.connection.wait([worker.sentinel], timeout=30) == [worker.sentinel]
    # The sentinel says the process ended (granian's own is_alive() may still answer
    # True for a moment: the race granian_adapter.py's stop rule works around).
    worker.join()
    # granian's per-worker watcher thread took the exit as a requested stop.
    assert parent.interrupt_children == []
    assert not parent.main_loop_interrupt.is_set()


def test_a_served_stop_goes_through_feedsvc_hooks(content_dir: Path, serve) -> None:
    """The readiness line is ours, granian's own is dropped, and the stop rule is ours."""
    server = serve(content_dir, "--no-watch", "--verbose")
    server.stop()
    log = "".join(server.log)
    assert server.proc.returncode == 0, log
    assert len(re.findall(r"Listening at: http://127\.0\.0\.1:\d+ \(pid \d+\)", log)) == 1, log
    assert "Starting granian" in log, log  # granian's own lines still reach our log
    for number in (1, 2):
        assert re.search(rf"worker-{number} (stopped|idle after the stop: ended)", log), log
    assert "Killing" not in log and "refused to gracefully stop" not in log, log
