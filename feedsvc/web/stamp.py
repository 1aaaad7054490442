"""The feeds' change stamp: a tiny file beside a SQLite store; owns nothing else.

A refresh that one worker ran must be served by every worker as soon as its
answer leaves (docs/http.md, "Caching and revalidation"). The worker marks
this file after the scan committed; every worker stats it on each feed
request (about a microsecond) and asks the store for its generation only
when the stamp moved. No process waits for another. PostgreSQL stores have
no file beside them (instances may run on other hosts): there every feed
request reads the generation itself (``FeedCache`` without a signal).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path

import sqlalchemy as sa

log = logging.getLogger(__name__)

# The coarsest timestamp step of a filesystem a store may live on (FAT: 2 s).
_COARSEST_NS = 2 * 10**9


def stamp_path(store_url: str) -> Path | None:
    """``<store>.feeds-stamp`` beside a SQLite store file; None for PostgreSQL."""
    url = sa.make_url(store_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        return None
    db = Path(url.database).expanduser().absolute()
    return db.with_name(f"{db.name}.feeds-stamp")


class StampFile:
    """A file whose modification time moves whenever the feeds may have changed.

    Invariant: each ``mark()`` that returns leaves the file's ``st_mtime_ns``
    strictly greater than any value ``read()`` returned before it, in any
    process that sees the folder, whatever the clock's granularity: the time
    is set explicitly under an exclusive lock, never left to the kernel's
    clock tick. ``read()`` is 0 while the file does not exist.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def read(self) -> int:
        try:
            return os.stat(self._path).st_mtime_ns
        except OSError:
            return 0

    def mark(self) -> None:
        """Move the stamp; a folder that refuses it is logged (the poll still follows)."""
        try:
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            log.warning("cannot mark the feeds' change stamp %s: %s", self._path, exc.strerror)
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # two workers marking at once move it twice
            before = os.fstat(fd).st_mtime_ns
            for step in (1, _COARSEST_NS):
                stamp = max(time.time_ns(), before + step)
                os.utime(fd, ns=(stamp, stamp))
                if os.fstat(fd).st_mtime_ns > before:
                    return
        except OSError as exc:
            log.warning("cannot mark the feeds' change stamp %s: %s", self._path, exc.strerror)
        finally:
            os.close(fd)  # releases the lock
