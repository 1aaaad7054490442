"""Reading one file into an ``Outcome``, and a process pool that reads many; decides nothing.

Owns the per-file work of a scan (read the bytes, hash them, parse,
normalise, each file within its budget: ``budget.py``) and the pool that
spreads it over processes. ``feedsvc check`` reads each file with the same
functions (``inspect``). What an outcome means for the scan is
``ledger.py``'s business; no store and no shared state here.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import os
from collections import deque
from collections.abc import Generator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from multiprocessing.context import BaseContext
from pathlib import Path

from feedsvc import budget
from feedsvc.budget import BudgetRunner
from feedsvc.dates import FileTimes, file_times, first_seen
from feedsvc.discover import CHANGING_REASON, VANISHED_REASON, file_hash, read_source
from feedsvc.errors import SourceError
from feedsvc.normalise import Normalised, normalise_document
from feedsvc.normalise.conventions import not_an_item
from feedsvc.outcome import Changing, Failed, Outcome, Parsed, Same, Skipped, Vanished
from feedsvc.parse import parse_document
from feedsvc.settings import Settings
from feedsvc.types import RawDocument, SourceFile, StoredFile

log = logging.getLogger(__name__)

# Files per task sent to a pool process, and tasks in flight per process:
# enough to keep every process busy, few enough to bound memory.
_POOL_BATCH = 64
_POOL_AHEAD = 3

# Imported by the pool's fork server before it forks workers (_pool_context).
_PRELOAD = "feedsvc.preload"

# A file to read, with its stored row (None: a new file).
Work = tuple[SourceFile, StoredFile | None]


@dataclass(frozen=True, slots=True)
class FileReader:
    """How one scan reads its files: the settings, the scan's moment, and whether
    files whose bytes did not change are normalised again (the site settings did)."""

    settings: Settings
    now: datetime
    renormalise: bool = False
    # ``settings.content_root``, resolved once per scan rather than per file
    # (it builds three paths and asks for the working directory).
    root: Path = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", self.settings.content_root)

    def read(
        self,
        source: SourceFile,
        prev: StoredFile | None,
        *,
        runner: BudgetRunner | None = None,
        moved_from: StoredFile | None = None,
    ) -> Outcome:
        """Read, parse and normalise one new or changed file.

        ``runner``: where a heavy file is parsed under its budget (None: here).
        ``moved_from``: the row of the file this one is the moved copy of
        (claims.py): its first-seen and change times carry over, so the
        item's dates stay.
        """
        settings = self.settings
        try:
            data = read_source(self.root, source, settings.content.max_file_bytes)
        except SourceError as exc:
            if exc.reason == VANISHED_REASON:
                return Vanished()
            if exc.reason == CHANGING_REASON:
                return Changing()
            return Failed(exc.reason)
        digest = file_hash(data)
        unchanged = prev is not None and prev.file_hash == digest and prev.error is None
        if unchanged and not self.renormalise:
            return Same(digest)
        times = file_times(
            source.mtime_ns, prev if prev is not None else moved_from, digest, self.now
        )
        refused = budget.precheck(data)
        if refused is not None:
            return Failed(refused, digest)
        if runner is not None and budget.is_heavy(data):
            finished, outcome = runner.run(settings, source.path, data, times, digest)
            if finished:
                assert isinstance(outcome, Parsed | Skipped | Failed)
                return outcome
            return Failed(budget.time_reason(_budget_seconds(settings)), digest)
        return _parse_item(settings, source.path, data, times, digest)


def examine(
    settings: Settings, path: str, data: bytes, times: FileTimes
) -> tuple[RawDocument, Normalised | str]:
    """Parse and normalise one file's bytes: the raw document, and its item or why it is not one.

    Raises ``SourceError`` for a file that cannot be used.
    """
    raw = parse_document(path, data)
    skipped = not_an_item(raw)
    if skipped is not None:
        return raw, skipped
    done = normalise_document(
        raw,
        settings.site,
        first_seen=times.first_seen,
        changed_at=times.changed_at,
        rules=settings.content.rules,
    )
    return raw, done


def inspect(
    settings: Settings, root: Path, source: SourceFile, now: datetime
) -> tuple[RawDocument, Normalised | str]:
    """``feedsvc check``'s reading of one file under ``root``: what a scan seeing it
    for the first time makes of it (first seen ``now``, never changed).

    Raises ``SourceError`` where a scan records an error for the file.
    """
    data = read_source(root, source, settings.content.max_file_bytes)
    refused = budget.precheck(data)
    if refused is not None:
        raise SourceError(source.path, refused)
    return examine(settings, source.path, data, FileTimes(first_seen(source.mtime_ns, now)))


def _parse_item(
    settings: Settings, path: str, data: bytes, times: FileTimes, digest: str
) -> Parsed | Skipped | Failed:
    """``examine`` as an outcome (here, in a pool process, or in the budget helper)."""
    try:
        raw, done = examine(settings, path, data, times)
    except SourceError as exc:
        return Failed(exc.reason, digest)
    except MemoryError:  # under the address-space cap of a pool or helper process
        return Failed(budget.memory_reason(settings.content.file_memory_mb), digest)
    for warning in raw.warnings:
        log.warning("%s: %s", path, warning)
    if isinstance(done, str):
        return Skipped(done, digest, times)
    return Parsed(done.item, digest, times, raw.warnings + done.warnings)


def _budget_seconds(settings: Settings) -> float:
    return float(settings.content.file_budget_seconds)


def _warm_up_args(
    settings: Settings, now: datetime, *, every_model: bool = False
) -> tuple[Settings, str, bytes, FileTimes, str]:
    """A small document whose parse loads every import and lingua's trigram
    models once (its prose is long for lingua: ``language.LONG_SAMPLE_LETTERS``).

    ``every_model``: a one-line document instead, whose short sample loads
    lingua's models of every length too (docs/language.md). For the helper of
    heavy files (``BudgetRunner``), whose budget the scan process times from
    outside: it cannot pause for a one-off load the way a pool process does
    (``budget.not_counted``), so it pays for it before its first file.
    """
    if every_model:
        text = b"# Warming up\n\nOne line.\n"
    else:
        text = (
            b"# Warming up\n\nA paragraph of plain English prose, parsed once when a process "
            b"starts, long enough that the language detector reads it by its trigram models "
            b"alone.\n"
        )
    return (settings, "warm-up.md", text, FileTimes(now, now), "")


# --- many files: here, or in a process pool -------------------------------------------------


def outcomes(
    reader: FileReader, work: Sequence[Work], workers: int
) -> Generator[Outcome, None, None]:
    """The outcome of each file of ``work``, in order; read here or in ``workers`` processes."""
    if workers <= 1:
        yield from _serial(reader, work)
        return
    context, forked_by_server = _pool_context()
    pool = ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_pool_init,
        initargs=(reader, os.getpid(), forked_by_server),
    )
    try:
        batches = iter([work[i : i + _POOL_BATCH] for i in range(0, len(work), _POOL_BATCH)])
        # A bounded window of tasks in flight: results are consumed in order,
        # and a slow consumer never lets finished results pile up in memory.
        # A submit may start a pool process: budget.interrupts_held keeps Ctrl-C
        # out of its start-up (the scan itself still gets it, right after).
        with budget.interrupts_held():
            window: deque[Future[list[Outcome]]] = deque(
                pool.submit(_pool_batch, batch) for batch in islice(batches, workers * _POOL_AHEAD)
            )
        while window:
            results = window.popleft().result()
            following = next(batches, None)
            if following is not None:
                with budget.interrupts_held():
                    window.append(pool.submit(_pool_batch, following))
            yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if forked_by_server:
            _stop_fork_server()


def _pool_context() -> tuple[BaseContext, bool]:
    """Where pool processes come from, and whether that is the fork server.

    Not ``fork``: the scan may run in a threaded server process, and a forked
    child could inherit a lock some other thread held. The fork server is a
    single-threaded process that imports ``feedsvc.preload`` (every module and
    lingua's trigram models) once and forks each worker from that warm state; without
    one (not POSIX), ``spawn``, where each worker loads everything itself.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn"), False
    context = multiprocessing.get_context("forkserver")
    # The server learns its client from the environment it inherits. Set once:
    # this process's PID never changes, and a forked copy sets its own.
    client = str(os.getpid())
    if os.environ.get(budget.CLIENT_ENV) != client:
        os.environ[budget.CLIENT_ENV] = client
    # "__main__" too, as multiprocessing does by default: imported once in the
    # server (a script's main module), not again by each worker. The server
    # imports it before _PRELOAD whatever the order; a client that died
    # meanwhile is still noticed, by its PID (budget.server_setup).
    context.set_forkserver_preload(["__main__", _PRELOAD])
    return context, True


def _stop_fork_server() -> None:
    """End the fork server with the pool: it holds every module and lingua's
    trigram models, and a long-running process (``feedsvc serve``) rarely needs a
    pool again.

    multiprocessing has no public way to stop it; ``ForkServer._stop`` is what
    its own tests use. tests/test_pool.py fails if it goes away.
    """
    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        stop()


def _serial(reader: FileReader, work: Sequence[Work]) -> Generator[Outcome, None, None]:
    """Each file read in this process; heavy ones go to a helper process with a time
    and memory budget."""
    settings = reader.settings
    runner = BudgetRunner(
        _parse_item,
        _budget_seconds(settings),
        settings.content.file_memory_mb,
        warm_up=_warm_up_args(settings, reader.now, every_model=True),
    )
    try:
        for source, prev in work:
            yield reader.read(source, prev, runner=runner)
    finally:
        runner.close()


_pool_reader: FileReader | None = None


def _pool_init(reader: FileReader, parent: int, forked_by_server: bool) -> None:
    global _pool_reader  # noqa: PLW0603 - one per pool process, set once at its start
    settings = reader.settings
    budget.child_setup(parent, settings.content.file_memory_mb, forked_by_server=forked_by_server)
    # Not inside a file's budget; in a fork of a warm server, about a millisecond.
    _parse_item(*_warm_up_args(settings, reader.now))
    _pool_reader = reader


def _pool_batch(batch: Sequence[Work]) -> list[Outcome]:
    """In a pool process: ``FileReader.read`` for each file of one batch."""
    assert _pool_reader is not None
    reader = _pool_reader
    seconds = _budget_seconds(reader.settings)
    done: list[Outcome] = []
    for source, prev in batch:
        # Every file within its time budget: this is the pool process's main thread.
        try:
            with budget.under_budget(seconds):
                outcome = reader.read(source, prev)
        except budget.OverBudget:
            outcome = Failed(budget.time_reason(seconds))
        done.append(outcome)
    return done
