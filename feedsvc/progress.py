"""Progress of a long scan, for the person or the log watching it.

Owns how progress is shown, not what is counted: the scan calls
``report(done, total)`` after each file it reads. On a terminal a one-line
bar is redrawn in place; anywhere else (a log file, a journal, a pipe) a
plain log line is written every ``LOG_EVERY_SECONDS``, so a scan of a big
folder never looks hung and never floods the log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TextIO

log = logging.getLogger("feedsvc.scan")

# Below this many files to read a scan is quick: no bar on a terminal.
BAR_MIN_FILES = 200
BAR_WIDTH = 30
# How often a terminal bar is redrawn, and how often a log line is written.
BAR_EVERY_SECONDS = 0.1
LOG_EVERY_SECONDS = 5.0


class ScanProgress:
    """``report(done, total)``: a bar on a terminal, a log line every few seconds otherwise."""

    def __init__(
        self,
        stream: TextIO,
        clock: Callable[[], float] = time.monotonic,
        *,
        bar: bool = True,
    ) -> None:
        """``bar=False``: log lines even on a terminal (a server shares it with its log)."""
        self._stream = stream
        self._clock = clock
        self._terminal = bar and _isatty(stream)
        self._started = clock()
        self._last = self._started
        self._logged = False

    def __call__(self, done: int, total: int) -> None:
        if self._terminal:
            self._bar(done, total)
        else:
            self._log(done, total)

    def _bar(self, done: int, total: int) -> None:
        if total < BAR_MIN_FILES:
            return
        now = self._clock()
        if done != total and now - self._last < BAR_EVERY_SECONDS:
            return
        self._last = now
        filled = BAR_WIDTH * done // total
        bar = "#" * filled + " " * (BAR_WIDTH - filled)
        end = "\n" if done == total else ""
        self._stream.write(f"\r[{bar}] {done}/{total} files{end}")
        self._stream.flush()

    def _log(self, done: int, total: int) -> None:
        now = self._clock()
        if done == total:
            # Only a scan that logged progress says it is done reading.
            if self._logged:
                log.info("read %d/%d files in %.0f s", done, total, now - self._started)
            return
        if now - self._last >= LOG_EVERY_SECONDS:
            self._last = now
            self._logged = True
            log.info("reading files: %d/%d (%d%%)", done, total, 100 * done // total)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
