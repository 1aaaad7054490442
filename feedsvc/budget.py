"""A time and memory budget for every file, and child processes that never outlive their parent.

Owns *where* one file's parse, render and sanitise may run and for how long
(docs/operations.md, "Budgets"); not how a file is parsed (``fileread.FileReader.read``).

- ``precheck``: shapes that Markdown renders slowly (runs of ``[``, ``![``,
  ``_a``, ``*a``...) are counted on the raw bytes; past ``REFUSE_DELIMITERS``
  the file is refused at once, past ``HEAVY_DELIMITERS`` it is parsed under a
  budget. Ordinary prose has a few hundred such characters.
- ``under_budget``: in a pool process (its main thread), SIGALRM ends a file
  after ``content.file_budget_seconds``; ``limit_memory`` caps the process's
  address space, so a file that would take gigabytes raises ``MemoryError``.
- ``BudgetRunner``: a scan that parses in its own process sends heavy files
  to one helper process with the same limits, killed and replaced when a
  file runs over its time.

Every such process dies with its parent (``PR_SET_PDEATHSIG``) and has its
standard output and error on ``/dev/null``: ``feedsvc scan | tee log`` ends
when ``feedsvc scan`` does, however it ends.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import resource
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

log = logging.getLogger(__name__)

# Markdown delimiter characters in one file: above HEAVY the file is parsed
# under the time budget; above REFUSE it could not finish within any
# reasonable budget (markdown-it spends 20-50 µs on each `[` of a run).
HEAVY_DELIMITERS = 2_000
REFUSE_DELIMITERS = 200_000
_DELIMITERS = (b"[", b"]", b"_", b"*", b"`", b"<", b"!")
_PR_SET_PDEATHSIG = 1
# How long a helper may take to start (imports, language models) on a loaded machine.
_START_SECONDS = 120


class OverBudget(Exception):
    """One file used more time than its budget."""


def delimiter_count(data: bytes) -> int:
    return sum(data.count(d) for d in _DELIMITERS)


def precheck(data: bytes) -> str | None:
    """Why ``data`` is refused before any parsing, or None."""
    count = delimiter_count(data)
    if count > REFUSE_DELIMITERS:
        return (
            f"refused: {count:,} Markdown delimiter characters ([ ] _ * ` < !), more than "
            f"{REFUSE_DELIMITERS:,}; a file of this shape takes too long to render"
        )
    return None


def is_heavy(data: bytes) -> bool:
    return delimiter_count(data) > HEAVY_DELIMITERS


def time_reason(seconds: float) -> str:
    return f"over its time budget: parsing and rendering took more than {seconds:g} s"


def memory_reason(megabytes: int) -> str:
    return f"over its memory budget: parsing and rendering needed more than {megabytes} MB"


# --- in the parent ---------------------------------------------------------------------------


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Start child processes inside this: SIGINT is blocked meanwhile.

    A child inherits the blocked signal, so a Ctrl-C to the terminal's process
    group cannot interrupt its interpreter start-up, before ``child_setup`` runs,
    and print a ``KeyboardInterrupt`` traceback on the parent's terminal. In the
    parent a Ctrl-C that came meanwhile stays pending and arrives when this ends.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


# --- in a child process ---------------------------------------------------------------------


def child_setup(parent: int, memory_mb: int, *, forked_by_server: bool = False) -> None:
    """First thing in a pool or helper process: die with the parent, quiet, capped.

    ``parent``: the PID of the process that started this one (``os.getpid()``
    there), to notice a parent that died before this process got here.
    ``forked_by_server``: this process was forked by multiprocessing's fork
    server on behalf of ``parent``; the server already tied it to itself at the
    fork (``server_setup``), so only a ``parent`` already gone is checked here.
    """
    if forked_by_server:
        if not alive(parent):
            os._exit(1)
    else:
        die_with_parent(parent)
    quiet_standard_streams()
    ignore_interrupts()
    limit_memory(memory_mb)


def ignore_interrupts() -> None:
    """Ctrl-C is the parent's to handle: it stops the scan and these processes
    die with it. The child was started with SIGINT blocked (``interrupts_held``);
    ignoring it discards one that arrived meanwhile, then it is unblocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def die_with_parent(parent: int) -> None:
    """Be killed when the parent dies, however it dies (Linux; elsewhere nothing).

    The signal is tied to the parent *thread* that started this process; a
    scan starts its processes from the thread it runs on and ends them before
    it returns, so that thread outlives them.
    """
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


# The environment variable through which a scan tells the fork server it starts
# which process it serves (``fileread._pool_context``, ``feedsvc.preload``);
# outside ``FEEDSVC_``, the namespace of settings, which refuses unknown names.
CLIENT_ENV = "_FEEDSVC_POOL_CLIENT"


def server_setup() -> None:
    """First thing in the parse pool's fork server (``feedsvc.preload``), before
    any heavy import: die with the client, quiet; each fork dies with the server.

    The client is the process named by ``CLIENT_ENV``, not whatever
    ``os.getppid()`` says by now: if the client was killed while this server
    started, its parent is already the reaper, and a check against that would
    pass. Each process the server forks is tied to the server in the fork
    itself (``os.register_at_fork``), before it unpickles anything: a client
    killed while a worker starts takes the server with it, and the worker too.
    """
    die_with_parent(int(os.environ.get(CLIENT_ENV, "0")))
    quiet_standard_streams()
    server = os.getpid()
    os.register_at_fork(after_in_child=lambda: die_with_parent(server))


def alive(pid: int) -> bool:
    """Whether ``pid`` has not ended: a process that ended but was not yet
    reaped (a zombie) counts as ended (Linux: its /proc state is Z or X)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # a process of another user: it exists
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True  # no /proc: kill's answer stands
    return state not in ("Z", "X")


def quiet_standard_streams() -> None:
    """Standard output and error on /dev/null: never hold the parent's pipe open."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd in (1, 2):
            os.dup2(devnull, fd)
    finally:
        os.close(devnull)


def limit_memory(memory_mb: int) -> None:
    """Cap this process's address space at its current size plus ``memory_mb``."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            current = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return  # not Linux: no cap
    limit = current + memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


@contextmanager
def not_counted() -> Iterator[None]:
    """Time spent inside is not charged to the running ``under_budget``: for a
    one-off load (language models) that the first file needing it would pay.

    Pauses this process's ``ITIMER_REAL`` and restarts it with what was left.
    Only in the main thread (where ``under_budget`` runs); elsewhere, and when
    no budget runs, nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    left, interval = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if left > 0:
            signal.setitimer(signal.ITIMER_REAL, left, interval)


@contextmanager
def under_budget(seconds: float) -> Iterator[None]:
    """Raise ``OverBudget`` in this (main) thread once ``seconds`` have passed."""

    def expire(_signum: int, _frame: object) -> None:
        raise OverBudget

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- the helper of a scan parsing in its own process ------------------------------------------


def _helper_main(
    conn: Connection,
    parent: int,
    memory_mb: int,
    target: Callable[..., Any],
    warm_up: tuple[Any, ...],
) -> None:
    child_setup(parent, memory_mb)
    target(*warm_up)  # imports and language models load now, not inside a file's budget
    conn.send("ready")
    while True:
        try:
            args = conn.recv()
        except EOFError:
            return
        conn.send(target(*args))


class BudgetRunner:
    """Runs ``target(*args)`` in one helper process, within a time limit.

    Started on first use, then ``target(*warm_up)`` runs once outside any
    budget; a call over its time kills the helper (the next call starts
    another). ``target`` must be importable (spawned, not forked: the scan may
    run in a threaded server process).
    """

    def __init__(
        self,
        target: Callable[..., Any],
        seconds: float,
        memory_mb: int,
        warm_up: tuple[Any, ...] = (),
    ) -> None:
        self._target = target
        self._warm_up = warm_up
        self._seconds = seconds
        self._memory_mb = memory_mb
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None

    def run(self, *args: Any) -> tuple[bool, Any]:
        """(True, result), or (False, None) when the helper ran over its time or died."""
        try:
            conn = self._connection()
            conn.send(args)
            if conn.poll(self._seconds):
                return True, conn.recv()
        except (EOFError, OSError):
            pass  # the helper died: out of memory in C code, or killed
        self.close()
        return False, None

    def _connection(self) -> Connection:
        if self._proc is not None and not self._proc.is_alive():
            self.close()
        if self._conn is None:
            ctx = multiprocessing.get_context("spawn")
            ours, theirs = ctx.Pipe()
            proc = ctx.Process(
                target=_helper_main,
                args=(theirs, os.getpid(), self._memory_mb, self._target, self._warm_up),
                name="feedsvc-budget",
                daemon=True,
            )
            with interrupts_held():
                proc.start()
            theirs.close()
            self._proc, self._conn = proc, ours
            if not ours.poll(_START_SECONDS) or ours.recv() != "ready":
                raise EOFError("the budget helper did not start")
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(timeout=10)
            self._proc = None
