"""What differs between SQLite and PostgreSQL, and nothing else; owns no store queries.

A ``Backend`` says how a URL becomes an engine (driver, pragmas, how a
transaction starts), which dialect's ``INSERT ... ON CONFLICT`` upserts, how
the hot-path read skips transaction round trips, and which scan lock is taken
(``lock.py``). The other store modules use only this interface, never a dialect name.
"""

from __future__ import annotations

import importlib.util
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from feedsvc.errors import StoreError
from feedsvc.store import lock as locks

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

Options = Mapping[str, Any]

_BUSY_TIMEOUT_S = 10
_BEGIN = "feedsvc_begin"  # SQLite execution option: how our own BEGIN is issued


@dataclass(frozen=True, slots=True)
class Backend:
    """One database product: its engine and the few things done differently on it."""

    name: str
    engine: sa.Engine
    insert: Callable[[sa.Table], sqlite.Insert | postgresql.Insert]
    scan_lock: Callable[[bool], AbstractContextManager[bool]]
    write_options: Options  # a transaction that will write
    snapshot_options: Options  # several reads that must agree
    single_options: Options  # one SELECT: no transaction round trips
    # One pre-compiled SELECT on a raw pooled DBAPI connection: the hot path.
    fast_scalar: Callable[[PoolProxiedConnection, str], Any]
    setup_lock: Callable[[sa.Connection], None] = lambda _conn: None
    # Serialises one kind of write transaction by name. SQLite needs nothing:
    # its write transactions (BEGIN IMMEDIATE) are serialised already.
    transaction_lock: Callable[[sa.Connection, str], None] = lambda _conn, _name: None
    extra_engines: tuple[sa.Engine, ...] = field(default=())
    # The store's file, when it is one (SQLite): its identity is checked (engine.py).
    path: Path | None = None

    def upsert(self, table: sa.Table, keys: Sequence[str]) -> sa.Insert:
        """INSERT, or on a key conflict overwrite every other column."""
        ins = self.insert(table)
        update = {c.name: ins.excluded[c.name] for c in table.columns if c.name not in keys}
        return ins.on_conflict_do_update(index_elements=list(keys), set_=update)


def require_driver(url_text: str) -> None:
    """Raise ``StoreError`` naming the extra when the URL's database driver is missing.

    psycopg is the optional extra ``feedsvc[postgresql]``: a plain ``pip install
    feedsvc`` is SQLite only. ``feedsvc serve`` asks before any worker starts.
    """
    try:
        backend = sa.make_url(url_text).get_backend_name()
    except sa.exc.ArgumentError:
        return  # open_backend says what is wrong with it
    if backend in ("postgresql", "postgres") and importlib.util.find_spec("psycopg") is None:
        raise StoreError(
            "store.url names PostgreSQL, but its driver psycopg is not installed: "
            "install feedsvc[postgresql] (pip install 'feedsvc[postgresql]')"
        )


def open_backend(url_text: str) -> Backend:
    try:
        url = sa.make_url(url_text)
    except sa.exc.ArgumentError as exc:
        raise StoreError("store.url is not a valid database URL") from exc
    if url.get_backend_name() == "sqlite":
        return _sqlite_backend(url)
    if url.get_backend_name() in ("postgresql", "postgres"):
        return _postgresql_backend(url)
    raise StoreError(
        f"unsupported store backend {url.get_backend_name()!r}: use sqlite or postgresql"
    )


def _sqlite_backend(url: sa.URL) -> Backend:
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        # Each pooled connection would see its own empty database.
        raise StoreError("an in-memory SQLite store is not supported: give a file path")
    # Resolve once, now: a later chdir must not move the store or its lock.
    db = Path(url.database).expanduser().absolute()
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the store directory: {exc.strerror}") from exc
    engine = sa.create_engine(
        url.set(drivername="sqlite+pysqlite", database=str(db)),
        connect_args={"timeout": _BUSY_TIMEOUT_S, "check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )
    sa.event.listen(engine, "connect", _sqlite_on_connect)
    sa.event.listen(engine, "connect", partial(_note_read_only, db))
    sa.event.listen(engine, "checkout", partial(_refresh_read_only, db))
    sa.event.listen(engine, "begin", _sqlite_on_begin)
    lock_path = db.with_name(db.name + ".scanlock")
    extra: dict[str, Any] = {"path": db}
    return Backend(
        name="sqlite",
        engine=engine,
        insert=sqlite.insert,
        scan_lock=partial(locks.file_lock, lock_path),
        # IMMEDIATE takes the write lock up front: two deferred writers that
        # both read first would deadlock on the lock upgrade (SQLITE_BUSY).
        write_options={_BEGIN: "IMMEDIATE"},
        snapshot_options={_BEGIN: "DEFERRED"},
        single_options={_BEGIN: None},
        fast_scalar=_sqlite_fast_scalar,
        **extra,
    )


_READ_ONLY = "feedsvc_read_only"


def _writable(db: Path) -> bool:
    """Whether the store file can be opened for writing now (what SQLite tries first).

    Asked with access(2), never by opening the file: closing any descriptor of
    the database file drops every POSIX lock this process holds on it, SQLite's
    included. Another process closing its last connection would then take the
    WAL for unused, checkpoint and delete it, and this process's next commits
    would go to the deleted file and be lost.
    """
    return os.access(db, os.W_OK)


def _note_read_only(db: Path, _dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
    """SQLite opens a file it cannot write read-only, and that connection stays read-only
    ("attempt to write a readonly database") after the file is writable again."""
    if not _writable(db):
        record.info[_READ_ONLY] = True


def _refresh_read_only(
    db: Path, _dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    # The pool then drops this connection and opens another (docs/operations.md,
    # "The store heals"); only connections opened read-only pay for the check.
    if record.info.get(_READ_ONLY) and _writable(db):
        raise sa.exc.DisconnectionError("the store file is writable again")


def _sqlite_on_connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:
    # The driver's own implicit BEGIN is turned off; _sqlite_on_begin issues ours.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_S * 1000}")
        # WAL: readers never block the scan's writer. The mode lives in the
        # file, so only the first connection ever converts it; several
        # processes opening a new file at once may find it mid-conversion.
        if _retry_busy(lambda: cur.execute("PRAGMA journal_mode").fetchone()[0]) != "wal":
            _retry_busy(lambda: cur.execute("PRAGMA journal_mode = WAL").fetchone())
        cur.execute("PRAGMA synchronous = NORMAL")  # durable enough in WAL, no fsync per commit
        cur.execute("PRAGMA foreign_keys = ON")
    finally:
        cur.close()


def _retry_busy(step: Callable[[], Any]) -> Any:
    """Run ``step`` again while SQLite answers "locked" without waiting itself.

    Switching to WAL and reading a WAL file another process is recovering
    return SQLITE_BUSY at once, whatever the busy timeout says.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.1)


def _sqlite_on_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get(_BEGIN, "DEFERRED")
    if mode == "IMMEDIATE":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif mode is not None:
        conn.exec_driver_sql("BEGIN")
    # mode None: one statement in SQLite's autocommit mode, atomic by itself.


def _sqlite_fast_scalar(conn: PoolProxiedConnection, sql: str) -> Any:
    # isolation_level None (see _sqlite_on_connect): the SELECT runs alone, no BEGIN.
    cur = conn.cursor()
    try:
        cur.execute(sql)
        row = cur.fetchone()
    finally:
        cur.close()
    return None if row is None else row[0]


def _postgresql_fast_scalar(conn: PoolProxiedConnection, sql: str) -> Any:
    # Autocommit for this one statement: one round trip instead of three
    # (BEGIN, SELECT, the pool's ROLLBACK). Restored before the connection
    # goes back to the pool, where SQLAlchemy expects transactions.
    driver = conn.driver_connection
    assert driver is not None
    driver.autocommit = True
    try:
        return _sqlite_fast_scalar(conn, sql)  # plain DB-API from here on
    finally:
        driver.autocommit = False


def _postgresql_backend(url: sa.URL) -> Backend:
    # Imported here: SQLAlchemy's PostgreSQL dialect takes about 40 ms to import, which
    # every process opening a SQLite store (the CLI, each server worker) would pay.
    from sqlalchemy.dialects import postgresql

    # psycopg 3 whatever the URL names: plain postgresql:// would pick psycopg2.
    url = url.set(drivername="postgresql+psycopg")
    require_driver(url.render_as_string())
    engine = sa.create_engine(url, pool_size=8, max_overflow=16)
    # The lock needs its own session that ends when the lock ends: no pool.
    lock_engine = sa.create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    return Backend(
        name="postgresql",
        engine=engine,
        insert=postgresql.insert,
        scan_lock=partial(locks.advisory_lock, lock_engine),
        write_options={},
        snapshot_options={"isolation_level": "REPEATABLE READ"},
        single_options={"isolation_level": "AUTOCOMMIT"},
        fast_scalar=_postgresql_fast_scalar,
        setup_lock=locks.lock_schema_setup,
        transaction_lock=locks.transaction_lock,
        extra_engines=(lock_engine,),
    )
