"""What reading one file gave a scan: one frozen case per result; not how it is read or used.

``fileread.py`` makes an ``Outcome`` for each file it reads (in this process
or a pool process, so every case pickles); ``ledger.py`` decides what it
means for the scan. Match on the case (``match`` or ``isinstance``): each
carries only the fields that case has.
"""

from __future__ import annotations

from dataclasses import dataclass

from feedsvc.dates import FileTimes
from feedsvc.types import Item


@dataclass(frozen=True, slots=True)
class Vanished:
    """Deleted or renamed away since discovery: nothing changes now, the next scan sees it gone."""


@dataclass(frozen=True, slots=True)
class Changing:
    """Written to while it was read: left for a later scan (docs/operations.md, "Settled files")."""


@dataclass(frozen=True, slots=True)
class Same:
    """A new fingerprint over the same bytes (a touch, a checkout): the item stays as is."""

    digest: str


@dataclass(frozen=True, slots=True)
class Failed:
    """The file cannot be used, and why; ``digest`` is set when its bytes were read."""

    reason: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """A document that is not an item (``normalise.conventions``), and why."""

    reason: str
    digest: str
    times: FileTimes


@dataclass(frozen=True, slots=True)
class Parsed:
    """The file's item, with the times it was made with and what parsing noticed."""

    item: Item
    digest: str
    times: FileTimes
    warnings: tuple[str, ...] = ()


Outcome = Vanished | Changing | Same | Failed | Skipped | Parsed
