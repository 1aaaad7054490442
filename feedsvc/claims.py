"""Which file holds each item id during one scan; decides only, reads and writes nothing.

Two documents never share an id (docs/identity.md). The file whose item is
stored holds its id. Another file claiming it is refused, on every scan, with
an error naming both, and waits: its file row keeps the id it claims. When the
holder goes (deleted, renamed, or its id changed), the id is *open* for the
rest of the scan and goes, in this order:

1. to the holder itself, moved: a new file with the holder's exact bytes
   (``mv a.md archive/a.md``), which keeps the item's first-seen and change
   times, so its published date does not move;
2. otherwise to the candidate seen first: earliest first-seen time, then path.

New files that claim an id nobody holds are read in that same order, so of
two new claimants the one seen first (then the smaller path) wins, whatever
order the folder lists them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from feedsvc.types import StoredFile

Verdict = Literal["take", "move", "refuse", "open"]


def collision_reason(item_id: str, holder: str) -> str:
    """The error of a file refused because ``holder`` holds ``item_id``."""
    return (
        f"id {item_id!r} is also claimed by {holder}, which holds it;"
        f" this file is indexed once {holder} is gone or changes its id"
    )


@dataclass(frozen=True, slots=True)
class Claim:
    """A file's verdict on the id it claims; ``holder`` is set when it was refused."""

    verdict: Verdict
    holder: str | None = None
    moved_from: StoredFile | None = None


class Claims:
    """The holders of ids as a scan goes: what the store held, then this scan's changes.

    ``holders``: id -> path of the file whose item is stored. ``gone``: rows of
    the files that disappeared since the last scan.
    """

    def __init__(
        self,
        holders: Mapping[str, str],
        gone: Iterable[StoredFile],
        waiting: Iterable[str] = (),
    ) -> None:
        self._held_at_start = dict(holders)
        self._holders = dict(holders)
        # Ids whose holder left -> its last row (None: its id changed, or it is
        # long gone and a claimant still waits, as after an interrupted scan).
        self._open: dict[str, StoredFile | None] = {
            item_id: None for item_id in waiting if item_id not in holders
        }
        for row in gone:
            if row.item_id is not None and self._holders.get(row.item_id) == row.path:
                del self._holders[row.item_id]
                self._open[row.item_id] = row

    def held_before(self, path: str, item_id: str | None) -> bool:
        """Whether ``path`` held ``item_id`` when the scan began (its item is stored)."""
        return item_id is not None and self._held_at_start.get(item_id) == path

    def holder(self, item_id: str) -> str | None:
        return self._holders.get(item_id)

    def claim(self, path: str, item_id: str, file_hash: str) -> Claim:
        """The verdict for ``path`` claiming ``item_id``; a taken id is held from now on."""
        holder = self._holders.get(item_id)
        if holder == path:
            return Claim("take")
        if holder is not None:
            return Claim("refuse", holder=holder)
        if item_id in self._open:
            left = self._open[item_id]
            if left is not None and left.file_hash == file_hash:
                del self._open[item_id]
                self._holders[item_id] = path
                return Claim("move", moved_from=left)
            return Claim("open")  # decided once every candidate is known
        self._holders[item_id] = path
        return Claim("take")

    def release(self, path: str, item_id: str | None) -> None:
        """``path`` no longer claims ``item_id`` (its id changed, or it is not an item)."""
        if item_id is not None and self._holders.get(item_id) == path:
            del self._holders[item_id]
            self._open[item_id] = None

    def open_ids(self) -> tuple[str, ...]:
        """Ids whose holder left and that no moved file took, sorted."""
        return tuple(sorted(self._open))

    def give(self, item_id: str, path: str) -> None:
        """``path`` won the open ``item_id``."""
        self._open.pop(item_id, None)
        self._holders[item_id] = path

    def close(self, item_id: str) -> None:
        """Nobody took the open ``item_id``: it stays free."""
        self._open.pop(item_id, None)
