"""Health that every process reports the same way (docs/operations.md, "Health").

Owns what "degraded" means and where the facts behind it live; not how
they are served (``web/api.py``) or how the watcher is restarted (``server.py``).

Two writers report: the watcher (its heartbeat, its last good scan, its
last failure, whether the store took its writes) and ``feedsvc serve``'s
supervisor (whether the watcher runs, died, is being restarted). Each
report goes into the store when it takes writes, and, for a SQLite store,
into a small file beside it (``<store>.health-<role>``), rewritten in place
at a fixed size, so it can still be written when the store refuses writes
or the disk is full. Readers take the newest of the two.

``assess`` turns the reports, the last scan and the store's own state into
reasons an operator understands; no reason means ``ok``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa

from feedsvc.errors import StoreError
from feedsvc.store import ScanFailure, ScanState, Store

log = logging.getLogger(__name__)

WATCH, SERVE, STORE = "watch", "serve", "store"
# The watcher reports at least this often; a report older than STALE_BEATS
# beats (plus a margin for a loaded machine) means it is gone or hangs.
MAX_BEAT_SECONDS = 5.0
STALE_BEATS = 3
_STALE_MARGIN_SECONDS = 5.0
_FILE_BYTES = 2048  # fixed size: rewriting it in place needs no new disk block


def beat_seconds(interval_seconds: int) -> float:
    return min(MAX_BEAT_SECONDS, float(interval_seconds))


@dataclass(frozen=True, slots=True)
class WatcherReport:
    """The watcher's heartbeat; ``stopped`` when it ended on request."""

    pid: int
    at: datetime
    beat_seconds: float
    last_ok_at: datetime | None = None
    failure: str | None = None
    failed_at: datetime | None = None
    store_error: str | None = None
    stopped: bool = False


@dataclass(frozen=True, slots=True)
class SupervisorReport:
    """``feedsvc serve``'s view of its watcher."""

    at: datetime
    running: bool
    pid: int | None = None
    reason: str | None = None  # why it is not running: "was killed by signal 9 (SIGKILL)"
    restart_at: datetime | None = None
    restarts: int = 0  # watchers started after the first


@dataclass(frozen=True, slots=True)
class StoreEvent:
    """The store's file was deleted or replaced under the service, and what was done."""

    at: datetime
    what: str


_Report = WatcherReport | SupervisorReport | StoreEvent
_KINDS: dict[str, type[WatcherReport] | type[SupervisorReport] | type[StoreEvent]] = {
    WATCH: WatcherReport,
    SERVE: SupervisorReport,
    STORE: StoreEvent,
}
_DATES = ("at", "last_ok_at", "failed_at", "restart_at")


def side_file(store_url: str, role: str) -> Path | None:
    """The file beside a SQLite store where ``role`` reports; None for PostgreSQL."""
    url = sa.make_url(store_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    db = Path(url.database).expanduser().absolute()
    return db.with_name(f"{db.name}.health-{role}")


def _dump(report: _Report) -> str:
    data = asdict(report)
    for key in _DATES:
        if isinstance(data.get(key), datetime):
            data[key] = data[key].isoformat()
    return json.dumps(data, sort_keys=True)


def _load(role: str, text: str | None) -> _Report | None:
    if not text:
        return None
    try:
        data = json.loads(text)
        for key in _DATES:
            if data.get(key) is not None:
                data[key] = datetime.fromisoformat(data[key])
        return _KINDS[role](**data)
    except (ValueError, TypeError, KeyError):
        return None  # a report from another version, or torn: as if absent


class HealthBoard:
    """Where the reports of one deployment are written and read."""

    def __init__(self, store: Store, store_url: str) -> None:
        self._store = store
        self._url = store_url

    def write(self, role: str, report: _Report) -> str | None:
        """Record ``report``; return why the store refused it (None: it took it)."""
        text = _dump(report)
        refused: str | None = None
        try:
            self._store.record_health(role, text)
        except StoreError as exc:
            refused = str(exc)
        path = side_file(self._url, role)
        if path is not None:
            _write_in_place(path, text)
        return refused

    def read(self, role: str) -> _Report | None:
        """The newest report of ``role`` from the store and the side file."""
        found: list[_Report] = []
        try:
            from_store = _load(role, self._store.health(role))
        except StoreError:
            from_store = None
        if from_store is not None:
            found.append(from_store)
        path = side_file(self._url, role)
        if path is not None:
            from_file = _load(role, _read(path))
            if from_file is not None:
                found.append(from_file)
        return max(found, key=lambda r: r.at, default=None)

    def watcher(self) -> WatcherReport | None:
        report = self.read(WATCH)
        return report if isinstance(report, WatcherReport) else None

    def supervisor(self) -> SupervisorReport | None:
        report = self.read(SERVE)
        return report if isinstance(report, SupervisorReport) else None

    def store_event(self) -> StoreEvent | None:
        report = self.read(STORE)
        return report if isinstance(report, StoreEvent) else None


def note_store_event(store: Store, store_url: str, what: str, now: datetime) -> None:
    """Log and record that the store's file was deleted or replaced (``reopen_if_replaced``)."""
    log.error("%s", what)
    HealthBoard(store, store_url).write(STORE, StoreEvent(at=now, what=what))


def _write_in_place(path: Path, text: str) -> None:
    data = text.encode("utf-8")
    if len(data) > _FILE_BYTES:
        data = data[:_FILE_BYTES]  # cannot happen with these reports; never overflow
    data = data.ljust(_FILE_BYTES, b" ")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        log.debug("cannot open %s: %s", path.name, exc)
        return
    try:
        os.pwrite(fd, data, 0)
    except OSError as exc:
        log.debug("cannot write %s: %s", path.name, exc)
    finally:
        os.close(fd)


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", "replace").strip()
    except OSError:
        return None


def store_space_problem(store_url: str) -> str | None:
    """Why the SQLite store's filesystem cannot take writes now (read-only, full), or None."""
    url = sa.make_url(store_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    folder = Path(url.database).expanduser().absolute().parent
    try:
        st = os.statvfs(folder)
    except OSError as exc:
        return f"the store's folder cannot be read: {exc.strerror}"
    if st.f_flag & os.ST_RDONLY:
        return "the store's filesystem is mounted read-only"
    # A full disk is not checked here: SQLite may still write into the space its
    # files already hold. The watcher's failed writes say when it cannot.
    return None


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def assess(  # noqa: PLR0913 - keyword-only facts, each named where it is called
    now: datetime,
    interval_seconds: int,
    *,
    last_scan: ScanState | None,
    failure: ScanFailure | None,
    watcher: WatcherReport | None,
    supervisor: SupervisorReport | None,
    store_problem: str | None,
    store_event: StoreEvent | None = None,
) -> list[str]:
    """Why the service is degraded, in an operator's words; empty when it is not."""
    reasons: list[str] = []
    if store_event is not None and now - store_event.at <= timedelta(seconds=2 * interval_seconds):
        reasons.append(f"{store_event.what} (at {_when(store_event.at)})")
    reasons += _watcher_reasons(now, watcher, supervisor)
    expected = (watcher is not None and not watcher.stopped) or supervisor is not None
    if expected:
        reasons += _scan_reasons(now, interval_seconds, last_scan, failure, watcher)
    store_error = store_problem or (watcher.store_error if watcher is not None else None)
    if store_error is None:
        store_error = _store_write_failure(watcher, failure, last_scan)
    if store_error is not None:
        reasons.append(
            f"the store cannot be written ({store_error}): feeds keep their last good state"
        )
    return reasons


def _watcher_reasons(
    now: datetime, watcher: WatcherReport | None, supervisor: SupervisorReport | None
) -> list[str]:
    """Whether the watcher runs: stopped, just restarted, or silent for too long."""
    if supervisor is not None and not supervisor.running:
        if watcher is not None and watcher.at > supervisor.at:
            return []
        again = (
            f"; restarting it at {_when(supervisor.restart_at)}"
            if supervisor.restart_at is not None
            else ""
        )
        return [
            f"the watcher is not running: it {supervisor.reason or 'stopped'} "
            f"at {_when(supervisor.at)}{again}; feeds are not refreshed meanwhile"
        ]
    if (
        supervisor is not None
        and supervisor.restarts
        and (watcher is None or watcher.at <= supervisor.at)
    ):
        return [
            f"the watcher was restarted at {_when(supervisor.at)} after it "
            f"{supervisor.reason or 'stopped'}, and has not reported yet"
        ]
    if watcher is not None and not watcher.stopped:
        silent = (now - watcher.at).total_seconds()
        if silent > STALE_BEATS * watcher.beat_seconds + _STALE_MARGIN_SECONDS:
            return [
                f"the watcher has not reported for {silent:.0f} s (last at {_when(watcher.at)}): "
                "it has stopped or hangs, and feeds are not refreshed"
            ]
    return []


def _scan_reasons(
    now: datetime,
    interval_seconds: int,
    last_scan: ScanState | None,
    failure: ScanFailure | None,
    watcher: WatcherReport | None,
) -> list[str]:
    """Whether a scan succeeded within two scan intervals (a watcher is expected)."""
    successes = [
        t
        for t in (
            last_scan.finished_at if last_scan is not None else None,
            watcher.last_ok_at if watcher is not None else None,
        )
        if t is not None
    ]
    since = max(successes, default=None)
    limit = timedelta(seconds=2 * interval_seconds)
    started = watcher.at if watcher is not None else now
    if since is None and now - started > limit:
        return ["no scan has succeeded yet: " + _last_failure(watcher, failure)]
    if since is not None and now - since > limit:
        return [
            f"no scan has succeeded since {_when(since)}, more than two scan intervals "
            f"({2 * interval_seconds} s): " + _last_failure(watcher, failure)
        ]
    return []


# What the SQLite and PostgreSQL drivers say when a write is refused for lack of
# room or permission (the store prefixes its own "cannot <do>:").
_REFUSED_WRITES = ("disk is full", "readonly database", "read-only", "No space left")


def _store_write_failure(
    watcher: WatcherReport | None, failure: ScanFailure | None, last_scan: ScanState | None
) -> str | None:
    """The reason of the newest scan failure when the store refused its writes."""
    candidates = [failure] if failure is not None else []
    if watcher is not None and watcher.failure is not None and watcher.failed_at is not None:
        candidates.append(ScanFailure(watcher.failure, watcher.failed_at))
    newest = max(candidates, key=lambda f: f.failed_at, default=None)
    if newest is None or (last_scan is not None and last_scan.finished_at >= newest.failed_at):
        return None
    if any(words in newest.reason for words in _REFUSED_WRITES):
        return newest.reason.rpartition(": ")[2]
    return None


def _last_failure(watcher: WatcherReport | None, failure: ScanFailure | None) -> str:
    reason = watcher.failure if watcher is not None else None
    reason = reason or (failure.reason if failure is not None else None)
    return f"the last attempt failed: {reason}" if reason else "see the watcher's log"


def watcher_report(  # noqa: PLR0913 - keyword-only facts, each named where it is called
    pid: int,
    now: datetime,
    interval_seconds: int,
    *,
    last_ok_at: datetime | None,
    failure: ScanFailure | None,
    store_error: str | None = None,
    stopped: bool = False,
) -> WatcherReport:
    return WatcherReport(
        pid=pid,
        at=now,
        beat_seconds=beat_seconds(interval_seconds),
        last_ok_at=last_ok_at,
        failure=failure.reason if failure is not None else None,
        failed_at=failure.failed_at if failure is not None else None,
        store_error=store_error,
        stopped=stopped,
    )


class ScanOutcomes(Protocol):
    """What the heartbeat reports of this process's scans (``scanner.Scanner`` has it).

    A protocol, so this module needs nothing from the pipeline, which uses it
    (``note_store_event``).
    """

    last_success_at: datetime | None
    last_failure: ScanFailure | None


class Heartbeat:
    """The watcher's reports: ``beat`` on a timer, ``stop`` when it ends on request."""

    def __init__(self, board: HealthBoard, scanner: ScanOutcomes, interval_seconds: int) -> None:
        self._board = board
        self._scanner = scanner
        self._interval = interval_seconds
        self._lock = threading.Lock()

    def beat(self, *, stopped: bool = False) -> None:
        with self._lock:
            report = watcher_report(
                os.getpid(),
                datetime.now(UTC),
                self._interval,
                last_ok_at=self._scanner.last_success_at,
                failure=self._scanner.last_failure,
                stopped=stopped,
            )
            refused = self._board.write(WATCH, report)
            # "database is locked": a long scan holds the write lock; not a refusal.
            if refused is not None and any(words in refused for words in _REFUSED_WRITES):
                # The store refused even this small write: say so beside it.
                self._board.write(WATCH, replace(report, store_error=_short(refused)))

    def stop(self) -> None:
        self.beat(stopped=True)


def _short(store_error: str) -> str:
    """'sqlite store: cannot record health: attempt to write a readonly database' -> the cause."""
    return store_error.rpartition(": ")[2] or store_error


def reasons_now(  # noqa: PLR0913 - keyword-only facts, each named where it is called
    store: Store,
    store_url: str,
    interval_seconds: int,
    now: datetime,
    *,
    last_scan: ScanState | None,
    failure: ScanFailure | None,
) -> tuple[list[str], WatcherReport | None]:
    """``assess`` on what the store and the files beside it say now; and the watcher's report."""
    board = HealthBoard(store, store_url)
    watcher = board.watcher()
    reasons = assess(
        now,
        interval_seconds,
        last_scan=last_scan,
        failure=failure,
        watcher=watcher,
        supervisor=board.supervisor(),
        store_problem=store_space_problem(store_url),
        store_event=board.store_event(),
    )
    return reasons, watcher
