"""The store's connections: the engine, wrapping database errors, healing; owns no queries.

``Connections`` is the one way the store modules (``sql.py``, ``writes.py``,
``hub.py``) reach the database: a connection with the backend's options for a
write, a snapshot or a single statement, each inside ``errors``, which turns
a database failure into a ``StoreError`` whose message never carries the URL
or password. Healing (docs/operations.md, "The store heals") lives here too:
connections that stay broken after a read-only or full episode are dropped,
a dropped server costs one failed call, a forked child never reuses the
parent's sockets, and a store file deleted or replaced underneath is noticed
by its identity: once this process knows the file, it opens connections to
that file only and never creates another at the path (a web worker that did
would serve an empty store), and it can look into a new file before using it.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from feedsvc.errors import StoreError
from feedsvc.store.backend import Backend, open_backend

T = TypeVar("T")
Options = Mapping[str, Any]

# How often a reading process looks at the store file's identity, at most.
IDENTITY_RECHECK_SECONDS = 1.0
# Errors after which a connection stays broken though the cause is gone.
_REOPEN_ON = ("readonly database", "disk is full", "disk I/O error", "no such table")
# How long a look into a new store file waits for its writer, at most.
_PEEK_TIMEOUT_SECONDS = 0.2


class Connections:
    """The engine of one store and every way of using it; shared by threads.

    Every call checks a connection out of the engine's pool and returns it.
    """

    def __init__(self, url: str) -> None:
        self.backend: Backend = open_backend(url)
        self._password = sa.make_url(url).password
        self._engine = self.backend.engine
        self._dbapi_error: type[Exception] = self._engine.dialect.loaded_dbapi.Error
        self._identity: tuple[int, int] | None = None
        self._identity_checked = time.monotonic()
        if self.backend.path is not None:
            sa.event.listen(self._engine, "do_connect", self._open_known_file)
        _FORKS.watch(self)

    @property
    def engine(self) -> sa.Engine:
        return self._engine

    # -- connections --

    @contextmanager
    def connect(self, options: Options) -> Iterator[sa.Connection]:
        """A pooled connection with the backend's ``options`` (no error wrapping)."""
        with self._engine.connect() as conn:
            conn.execution_options(**options)
            yield conn

    @contextmanager
    def snapshot(self, doing: str) -> Iterator[sa.Connection]:
        """Several reads that must agree with each other (one snapshot)."""
        with self.errors(doing), self.connect(self.backend.snapshot_options) as conn:
            yield conn

    @contextmanager
    def reading(self, doing: str) -> Iterator[sa.Connection]:
        """Reads that need not agree: each statement on its own, no transaction round trips."""
        with self.errors(doing), self.connect(self.backend.single_options) as conn:
            yield conn

    @contextmanager
    def write(self, doing: str) -> Iterator[sa.Connection]:
        """One write transaction, committed when the block ends without an exception."""
        with self.errors(doing), self.connect(self.backend.write_options) as conn, conn.begin():
            yield conn

    def single(self, doing: str, run: Callable[[sa.Connection], T]) -> T:
        """``run`` on a connection for one statement."""
        with self.reading(doing) as conn:
            return run(conn)

    def fast_scalar(self, doing: str, sql: str) -> Any:
        """One pre-compiled SELECT on a raw pooled connection: the hot path.

        Skips the ~90 µs of Core execution overhead per call. Core would
        notice a dropped server itself; on this raw path it is done here:
        every pooled connection is dropped, so a restarted database costs
        one failed call, not one per connection.
        """
        with self.errors(doing):
            conn = self._engine.raw_connection()
            try:
                return self.backend.fast_scalar(conn, sql)
            except self._dbapi_error as exc:
                if self._engine.dialect.is_disconnect(cast(Any, exc), conn.dbapi_connection, None):
                    conn.invalidate(exc)
                    self._engine.dispose()
                raise
            finally:
                conn.close()

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn a database failure into a ``StoreError`` saying what could not be done."""
        try:
            yield
        except (sa.exc.SQLAlchemyError, self._dbapi_error, OSError) as exc:
            if _needs_new_connections(exc):
                # SQLite keeps failing on connections opened before a read-only
                # or full episode ended: the next call opens new ones.
                self._engine.dispose()
            raise StoreError(
                f"{self.backend.name} store: cannot {doing}: {_reason(exc, self._password)}"
            ) from exc

    # -- lifecycle --

    def close(self) -> None:
        self._engine.dispose()
        for engine in self.backend.extra_engines:
            engine.dispose()

    def after_fork(self) -> None:
        """In a forked child: forget the parent's pooled connections without closing them."""
        self._engine.dispose(close=False)

    # -- the store file's identity (SQLite) --

    def remember_file(self) -> None:
        """The store file now at the path is the one this process uses."""
        self._identity = _file_identity(self.backend.path)

    def identity_check_due(self) -> bool:
        """Whether a reading process should look at the file's identity again now."""
        if self.backend.path is None:
            return False
        return time.monotonic() - self._identity_checked >= IDENTITY_RECHECK_SECONDS

    def file_moved(self, *, create: bool) -> str | None:
        """How the store file changed since ``remember_file``: "was deleted",
        "was replaced by another file", or None (unchanged, not a file, or
        deleted while ``create`` is False: the old file is read until a new one exists)."""
        path = self.backend.path
        if path is None:
            return None
        self._identity_checked = time.monotonic()
        current = _file_identity(path)
        if current == self._identity or (current is None and not create):
            return None
        return "was deleted" if current is None else "was replaced by another file"

    def drop_file_connections(self, *, deleted: bool) -> None:
        """Close every connection to the old file; nothing is written into a deleted file."""
        self._engine.dispose()
        path = self.backend.path
        if deleted and path is not None:
            # A new file must not pick up the deleted one's write-ahead log.
            for suffix in ("-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
        # The caller takes the file now at the path (creating it if deleted), then
        # ``remember_file``: until then a new connection may open whatever is there.
        self._identity = None

    @contextmanager
    def file_at_path(self, doing: str) -> Iterator[sa.Connection]:
        """A connection of its own, outside the pool, to the file now at the store's
        path (SQLite): to look into a new file before this process follows it.
        It never creates a file and waits little for the file's writer."""
        path = self.backend.path
        assert path is not None, "only a SQLite store has a file"
        engine = sa.create_engine(
            "sqlite+pysqlite://",
            poolclass=NullPool,
            creator=lambda: sqlite3.connect(
                _existing_file_uri(path), uri=True, timeout=_PEEK_TIMEOUT_SECONDS
            ),
        )
        try:
            with self.errors(doing), engine.connect() as conn:
                yield conn
        finally:
            engine.dispose()

    def _open_known_file(
        self, dialect: sa.Dialect, _record: Any, cargs: list[Any], cparams: dict[str, Any]
    ) -> Any:
        """SQLAlchemy's ``do_connect`` hook: once the store file is known, a new
        connection opens that file or fails; it never creates an empty file at
        the path, nor opens another file found there.

        A process whose file was deleted (a web worker, or the watcher between
        scans) otherwise makes a new, empty file with any new pooled connection,
        or opens a new file still being rebuilt, and serves or writes that
        (docs/operations.md, "The store heals"). Taking a new file is
        ``reopen_if_replaced``'s decision, made with ``drop_file_connections``.
        """
        path = self.backend.path
        known = self._identity
        if known is None or path is None or cparams.get("uri"):
            return None  # SQLAlchemy connects as configured
        conn = dialect.connect(_existing_file_uri(path), *cargs[1:], **{**cparams, "uri": True})
        # Opened first, then checked: a file swapped in between fails the check.
        if _file_identity(path) != known:
            conn.close()
            raise sqlite3.OperationalError("the store file is no longer the one in use")
        return conn


class _ForkWatch:
    """Every open ``Connections`` of this process, and the one fork hook that resets them.

    A forked child (a server worker) must not reuse the parent's sockets. The
    hook is registered when the first store opens, once per process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[Connections] = weakref.WeakSet()
        self._hooked = False

    def watch(self, db: Connections) -> None:
        with self._lock:
            if not self._hooked:
                os.register_at_fork(after_in_child=self._after_fork_in_child)
                self._hooked = True
            self._open.add(db)

    def _after_fork_in_child(self) -> None:
        # Another thread of the parent may have held the lock at the fork.
        self._lock = threading.Lock()
        for db in list(self._open):
            db.after_fork()


_FORKS = _ForkWatch()


def _needs_new_connections(exc: BaseException) -> bool:
    text = str(exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc)
    return any(words in text for words in _REOPEN_ON)


def _file_identity(path: Path | None) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the store's file, or None if it is not there."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _existing_file_uri(path: Path) -> str:
    """A SQLite URI that opens the file at ``path`` for reading and writing, never creating it."""
    return f"file:{quote(str(path))}?mode=rw"


def _reason(exc: BaseException, password: str | None) -> str:
    """A short, safe reason: the driver's first line, never a password or the URL."""
    orig = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
    if isinstance(orig, OSError) and orig.strerror:
        text = orig.strerror
    else:
        lines = str(orig).strip().splitlines()
        text = lines[0].strip() if lines else type(orig).__name__
    if password:
        text = text.replace(password, "***")
    return text[:200]
