"""``feedsvc serve``: granian for the web, one watcher process beside it.

Owns process layout: granian's main process forks ``server.workers``
workers, each building its own app (and store connections) after the fork;
the watcher runs in ONE separate process started by the main process only,
so the scheduler exists exactly once however many workers serve. The scan
lock makes a second deployment's watcher wait rather than scan at the same time.

Why granian and how it is held to the contract (bench/README.md, "Server
choice"): it serves several times gunicorn's requests/s on this app, but on
Linux each worker binds the port itself (SO_REUSEPORT) and granian announces
"Listening" before any worker listens. So:

- the port is reserved here first (bound, never listening), which makes
  ``--port 0`` one real port shared by every worker;
- granian's own "Listening" line is dropped and ours is logged only once a
  request on the port has been answered;
- SIGTERM/SIGINT are blocked while workers are forked: a worker still
  loading the app used to run the handler inherited from the main process,
  which lost the stop and left the main process waiting for that worker
  forever. A worker that does not stop within ``WORKERS_KILL_SECONDS`` is
  killed, and every worker dies with the main process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import ipaddress
import logging
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from feedsvc.granian_adapter import GranianServer, ServerOptions, Worker
from feedsvc.metrics import mark_process_dead, prepare_multiprocess_dir, remove_multiprocess_dir
from feedsvc.settings import Settings
from feedsvc.store.backend import require_driver
from feedsvc.supervise import WatcherSupervisor

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

log = logging.getLogger(__name__)

# Measured best on this app (bench/README.md): granian's single-threaded
# runtime and a few WSGI threads per worker; its defaults had twice the p99.
BLOCKING_THREADS = 4
# How long a worker may take to stop gracefully before it is killed: enough
# for any request in flight, short enough that keep-alive clients which keep
# sending cannot hold a stop up.
WORKERS_KILL_SECONDS = 5
# After a stop, how often a worker still running is checked for open connections.
IDLE_CHECK_SECONDS = 0.5
# An idle kept-alive connection, or a client still sending its headers, is
# closed after this long (gunicorn's keep-alive was 5 s).
HEADER_READ_MILLISECONDS = 5_000
STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_PR_SET_PDEATHSIG = 1


def serve(
    settings: Settings, *, host: str, port: int, watch: bool, config: str | None = None
) -> int:
    try:
        address = _numeric_address(host, port)
        port = _free_port(address, port)
        reserved = _reserve_port(address, port)
    except PortInUseError as exc:
        log.error("cannot listen on %s port %s: %s", host, exc.port, exc.strerror)
        return 1
    except OSError as exc:
        log.error("cannot listen on %s port %s: %s", host, port, exc)
        return 1
    # A store the workers could never open would have granian respawn them forever.
    require_driver(settings.store.url)
    metrics_dir = prepare_multiprocess_dir()  # before any worker or watcher starts
    try:
        with reserved:
            return _serve_on(settings.listening_on(host, port), address, port, watch, config)
    finally:
        remove_multiprocess_dir(metrics_dir)


def _serve_on(settings: Settings, address: str, port: int, watch: bool, config: str | None) -> int:
    """Serve on the reserved ``port``, with the watcher unless ``watch`` is False.

    ``settings`` are already those of a server on that port (``listening_on``).
    """
    if settings.base_url_follows_server:
        log.info("links use %s (set site.base_url for a public name)", settings.site.base_url)
    watcher = _start_watcher(config, settings) if watch else None
    if watcher is not None:
        log.info("watcher started (pid %s)", watcher.pid)
    try:
        return _run_granian(settings, address, port, watcher)
    finally:
        if watcher is not None:
            watcher.stop()


def _numeric_address(host: str, port: int) -> str:
    """granian takes IP literals only; a name is resolved here, as gunicorn did."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    return str(info[0][4][0])


class PortInUseError(OSError):
    """Another process, feedsvc or not, listens on the port asked for."""

    def __init__(self, port: int) -> None:
        super().__init__(errno.EADDRINUSE, f"port {port} is already in use by another process")
        self.port = port


def _free_port(address: str, port: int) -> int:
    """``port`` if nobody listens on it (0: a free port), else ``PortInUseError``.

    The bind here is without SO_REUSEPORT, which the workers use, so it fails
    on a port that any process listens on, another feedsvc included: a second
    server would otherwise share the port and the kernel would split the
    requests between two sites. SO_REUSEADDR keeps a port that only has
    connections in TIME_WAIT (a server just restarted) usable.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(port) from exc
            raise
        return int(probe.getsockname()[1])


def _reserve_port(address: str, port: int) -> socket.socket:
    """A socket bound to the port (port 0: a free one) and never listening.

    Every worker binds the same port with SO_REUSEPORT; holding it here keeps
    the port ours from before the first worker until after the last one, and
    a port held by another program is refused here, before anything starts.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    return sock


def _die_with_parent() -> None:
    """In a child: be killed when the process that started it dies, however it dies."""
    if sys.platform != "linux":
        return
    parent = os.getppid()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def _start_watcher(config: str | None, settings: Settings) -> WatcherSupervisor:
    """``feedsvc watch`` as a child process with the same config and environment,
    restarted whenever it dies (``supervise.py``).

    A fresh interpreter, not a fork (no copy of any lock or connection) and not
    multiprocessing: granian forks its workers from this process, and a
    multiprocessing child would be "joined" by every worker's exit handlers.
    """
    argv = [sys.executable, "-m", "feedsvc", "watch"]
    if config is not None:
        argv += ["--config", config]
    if log.isEnabledFor(logging.DEBUG):
        argv.append("--verbose")
    env = dict(os.environ)
    if settings.base_url_follows_server:
        # Items' urls are written by the watcher: the same links as the web workers.
        env["FEEDSVC_SITE_BASE_URL"] = settings.site.base_url
    return WatcherSupervisor(settings, argv, env)


def _load_app(settings: Settings) -> WSGIApplication:
    """In a freshly forked worker, before granian installs its own signal handlers.

    The stop signals arrive blocked (see ``_Hooks.forking``): until granian's
    handlers are in place, a stop ends this worker at once, as nothing is
    served yet. The app, and so the store connection, is built here, after the
    fork: nothing is shared with the main process or another worker.
    """
    _die_with_parent()
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    from feedsvc.web import SERVER_RECHECK_SECONDS, create_app

    return create_app(settings, recheck_seconds=SERVER_RECHECK_SECONDS)


def _server_options(settings: Settings, address: str, port: int) -> ServerOptions:
    """How granian runs this app, and how many connections each worker holds.

    granian counts a connection against its per-worker limit ("backpressure",
    by default backlog / workers = 512) from accept until it closes, idle or
    not: 1,000 idle connections from one client, reopened as they time out,
    left a normal request waiting in the listen queue for seconds. With room
    for thousands per worker, idle ones only cost a little memory until the
    header timeout closes them; a bigger flood is for a reverse proxy
    (docs/operations.md).
    """
    return ServerOptions(
        address=address,
        port=port,
        workers=settings.server.workers,
        blocking_threads=min(BLOCKING_THREADS, 2 * (os.cpu_count() or 1) + 1),
        backlog=settings.server.backlog,
        backpressure=settings.server.max_connections,
        header_read_milliseconds=HEADER_READ_MILLISECONDS,
        kill_seconds=WORKERS_KILL_SECONDS,
    )


def _run_granian(
    settings: Settings, address: str, port: int, watcher: WatcherSupervisor | None
) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a requested stop."""
    server = GranianServer(_Hooks(address, port, watcher), _server_options(settings, address, port))
    code = server.serve(functools.partial(_load_app, settings))
    # granian exits 1 when a worker left on its own, e.g. a terminal's
    # Ctrl-C reaching the workers before this process: still a stop.
    return 0 if server.stop_requested else code


class _Hooks:
    """feedsvc's start-up, readiness and stop rules, run inside granian's main process."""

    def __init__(self, address: str, port: int, watcher: WatcherSupervisor | None) -> None:
        self._address = address
        self._port = port
        self._watcher = watcher

    @contextlib.contextmanager
    def forking(self) -> Iterator[None]:
        """The stop signals held back until every worker is forked."""
        held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def started(self, interrupt: threading.Event) -> None:
        # Only now, with no fork to come, may this process run a thread of its own.
        threading.Thread(
            target=_announce,
            args=(self._address, self._port, interrupt),
            name="feedsvc-ready",
            daemon=True,
        ).start()
        if self._watcher is not None:
            self._watcher.watch_in_background()  # restarts a dead watcher (supervise.py)

    def stop_workers(self, workers: tuple[Worker, ...]) -> None:
        _stop_workers(workers)


def _stop_workers(workers: tuple[Worker, ...]) -> None:
    """Stop every worker: SIGTERM, up to ``WORKERS_KILL_SECONDS`` in all, then SIGKILL.

    Replaces granian's own, which races with the thread it runs per worker
    to reap it: when that thread reaps a worker that stopped at once, its
    ``is_alive()`` check answers True, and it logs "Killing worker-1 after
    it refused to gracefully stop" milliseconds after SIGTERM, on an idle
    server. A worker's sentinel becomes ready when the process ends,
    whoever reaps it, so here an idle stop is quiet and a busy worker
    gets the whole grace period to finish its requests.

    A worker that has just started can lose the SIGTERM (it lands before
    granian's server waits for it), and a second SIGTERM hangs a worker
    that is finishing requests, so it is never repeated: a worker still
    running after ``IDLE_CHECK_SECONDS`` with no connection open has
    nothing left to finish, and is ended quietly.
    """
    for worker in workers:
        worker.terminate()
    pending = {worker.sentinel: worker for worker in workers}
    deadline = time.monotonic() + WORKERS_KILL_SECONDS
    while pending and (left := deadline - time.monotonic()) > 0:
        ready = multiprocessing.connection.wait(
            list(pending), timeout=min(left, IDLE_CHECK_SECONDS)
        )
        for sentinel, worker in list(pending.items()):
            if sentinel in ready:
                log.debug("worker-%d stopped", worker.number)
            elif not _open_connections(worker.pid):
                log.debug("worker-%d idle after the stop: ended", worker.number)
                worker.kill()
            else:
                continue
            del pending[sentinel]
    for worker in pending.values():
        log.warning(
            "worker-%d still busy %d s after the stop: killed", worker.number, WORKERS_KILL_SECONDS
        )
        worker.kill()
    for worker in workers:
        worker.join()
        mark_process_dead(worker.pid)


def _announce(address: str, port: int, interrupt: threading.Event) -> None:
    """Log "Listening at" once a worker has answered a request on the port."""
    shown = f"[{address}]" if ":" in address else address
    probe = _probe_address(address)
    while not interrupt.is_set():
        if _answers(probe, port):
            log.info("Listening at: http://%s:%s (pid %s)", shown, port, os.getpid())
            return
        interrupt.wait(0.05)


# TCP states of /proc/net/tcp in which a connection may still carry an answer:
# ESTABLISHED, and CLOSE_WAIT (the client has sent all it will, the answer may not be done).
_BUSY_TCP_STATES = frozenset({"01", "08"})


def _open_connections(pid: int) -> int:
    """How many TCP connections process ``pid`` holds open (Linux ``/proc``; else 1).

    Counts the sockets among its file descriptors that ``/proc/PID/net/tcp``
    and ``tcp6`` list in a busy state: a worker with none has no request in flight.
    """
    if sys.platform != "linux":
        return 1  # cannot tell: let it have the grace period
    try:
        inodes = set()
        for fd in os.scandir(f"/proc/{pid}/fd"):
            target = os.readlink(fd.path)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
        busy = 0
        for table in ("tcp", "tcp6"):
            with open(f"/proc/{pid}/net/{table}", encoding="ascii") as rows:
                next(rows)  # the header
                for row in rows:
                    fields = row.split()
                    if fields[3] in _BUSY_TCP_STATES and fields[9] in inodes:
                        busy += 1
    except OSError:  # it ended meanwhile (nothing open), or an fd closed under us
        return 1 if os.path.exists(f"/proc/{pid}") else 0
    return busy


def _probe_address(bound: str) -> str:
    """Where to knock: the bound address, or loopback when bound to every address."""
    ip = ipaddress.ip_address(bound)
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return bound


def _answers(address: str, port: int) -> bool:
    """True when an HTTP request to the address is answered at all."""
    request = b"HEAD /healthz HTTP/1.1\r\nHost: feedsvc\r\nConnection: close\r\n\r\n"
    try:
        with socket.create_connection((address, port), timeout=5) as sock:
            sock.sendall(request)
            return sock.recv(16).startswith(b"HTTP/")
    except OSError:
        return False
