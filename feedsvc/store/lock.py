"""The global scan lock on each backend; owns locking only, not what a scan does.

Both locks belong to the operating system or the database server, never to a
row or a file's existence, so a holder killed with SIGKILL cannot leave a
stale lock behind:

- SQLite: ``flock`` on ``<dbfile>.scanlock``. The file is opened anew for each
  acquisition, so two threads of one process conflict too (flock locks belong
  to the open file description). The kernel drops the lock when the holder dies.
- PostgreSQL: a session-level advisory lock on a connection opened for the
  lock alone and closed on release; the server drops it when the session ends,
  including when the client host vanishes. The key is derived from the schema,
  so stores in different schemas of one database do not block each other.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import sqlalchemy as sa

LOCK_NAME = "feedsvc.scan_lock"


@contextmanager
def file_lock(path: Path, wait: bool) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path``; yield False at once if taken and not ``wait``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            # Blocking LOCK_EX sleeps in the kernel: no busy-spin while waiting.
            fcntl.flock(fd, flags)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        # Never unlink the lock file: a waiter may already hold it open, and
        # a new file would let a third process lock a different inode.
        os.close(fd)


def advisory_key(schema: str, name: str = LOCK_NAME) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` from a lock name and the schema."""
    digest = hashlib.blake2b(f"{name}:{schema}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def transaction_lock(conn: sa.Connection, name: str) -> None:
    """PostgreSQL: hold the advisory lock ``name`` until ``conn``'s transaction ends.

    For writes that read before they decide (a count against a cap), which
    READ COMMITTED alone would let two processes decide at once.
    """
    schema = str(conn.execute(sa.text("SELECT current_schema()")).scalar_one())
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": advisory_key(schema, name)})


def lock_schema_setup(conn: sa.Connection) -> None:
    """Serialise schema creation between processes until ``conn``'s transaction ends.

    PostgreSQL only: two processes opening a fresh store at once would both
    run CREATE TABLE; a transaction-level advisory lock makes the second wait
    and then find the tables there.
    """
    schema = str(conn.execute(sa.text("SELECT current_schema()")).scalar_one())
    key = advisory_key(schema, "feedsvc.schema_setup")
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


@contextmanager
def advisory_lock(engine: sa.Engine, wait: bool) -> Iterator[bool]:
    """Hold a PostgreSQL session advisory lock on a dedicated connection.

    ``engine`` must not pool (``NullPool``) and must be in AUTOCOMMIT: closing
    the connection ends the session, which releases the lock even if the
    explicit unlock never runs, and an autocommit session is not left
    "idle in transaction" while a long scan runs.
    """
    with engine.connect() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar_one()
        key = advisory_key(str(schema))
        if wait:
            # Blocks in the server until the holder releases or disconnects.
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
        else:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
            if not got.scalar_one():
                yield False
                return
        try:
            yield True
        finally:
            # Closing the session below releases the lock anyway; a failed
            # unlock (the connection broke mid-scan) must not mask the
            # scan's own exception.
            with suppress(sa.exc.DBAPIError):
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
