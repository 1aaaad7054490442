"""What ``feedsvc check`` reads and prints; writes nothing and opens no store.

Owns the check command's view of a folder or file: each file read as a first
scan of it would read it (``fileread.inspect``, the scan's own per-file
functions), its key fields and dates printed, its problems listed, and the
scan report's counts as that scan would give them. Not the argument parsing
or exit-code policy of the other commands (``cli.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from feedsvc.claims import Claims, collision_reason
from feedsvc.dates import first_seen, is_listed, shows_at
from feedsvc.discover import discover, target_exists, walked_by_name
from feedsvc.errors import SourceError
from feedsvc.fileread import inspect
from feedsvc.normalise import document_references
from feedsvc.normalise.references import local_references
from feedsvc.report import MEANING, count_lines
from feedsvc.settings import Settings
from feedsvc.types import FileError, Item, RawDocument, SourceFile

if TYPE_CHECKING:
    from feedsvc.normalise.dates import ItemDates


def run_check(settings: Settings, path: str | None, now: datetime) -> int:
    """Print what a first scan at ``now`` would make of each file under ``path``
    (default: the content folder); return the exit code: 1 when a file has a problem."""
    target = _check_target(settings, path)
    if target is None:
        return 1
    for resource in target.resources:
        print(f"{resource}: skipped (resource: served, never an item)")
    for error in target.errors:
        print(f"{error.path}: ERROR {error.error}")
    check = _Checker(settings, target.root, now)
    for source in target.files:
        check.file(source)
    problems = len(target.errors) + check.problems + check.refuse_collisions()
    tally = check.tally
    tally.update(failed=problems, resources=len(target.resources), ignored=target.ignored)
    tally["not items"] = check.skipped
    tally["documents"] = len(target.files)
    print("\n".join(count_lines(tally)))
    print(
        f"{len(target.files) + len(target.errors) + len(target.resources)} files, "
        f"{problems} with problems; "
        f"skipped: {len(target.resources)} resources, {check.skipped} not items; "
        f"{check.missing} missing references"
    )
    return 1 if problems else 0


@dataclass(frozen=True, slots=True)
class _Target:
    """What ``check`` looks at: the files of a folder, or the one file asked for."""

    root: Path
    files: tuple[SourceFile, ...]
    errors: tuple[FileError, ...]
    resources: tuple[str, ...]
    ignored: int


def _check_target(settings: Settings, path: str | None) -> _Target | None:
    """The files ``check`` reads (a file outside the content folder is read from its
    own folder); None, said why, when the one file asked for is not one a scan reads."""
    content = settings.content
    root = settings.content_root
    target = Path(path).absolute() if path else root
    if not target.is_file():
        found = discover(target, content.ignore, content.max_file_bytes, rules=content.rules)
        return _Target(target, found.files, found.errors, found.resources, found.ignored)
    if not target.is_relative_to(root):
        root = target.parent
    found = discover(root, content.ignore, content.max_file_bytes, rules=content.rules)
    wanted = target.relative_to(root).as_posix()
    one = _Target(
        root,
        tuple(f for f in found.files if f.path == wanted),
        tuple(e for e in found.errors if e.path == wanted),
        tuple(r for r in found.resources if r == wanted),
        found.ignored,
    )
    if not one.files and not one.errors and not one.resources:
        print(f"{target}: skipped (hidden, ignored, or not a regular file)")
        return None
    return one


class _Checker:
    """``check``'s reading of each file, as a first scan of the folder would read it
    (``fileread.inspect``): prints what it made of the file, counts like a scan report."""

    def __init__(self, settings: Settings, root: Path, now: datetime) -> None:
        self._settings = settings
        self._root = root
        self._now = now
        self.problems = 0
        self.skipped = 0
        self.missing = 0  # local references whose target does not exist
        # The scan report's counts, as a first scan of this folder would give them.
        self.tally = dict.fromkeys(MEANING, 0)
        self._counted: dict[str, str] = {}  # path -> the count its item went to
        self._claims: list[tuple[datetime, str, str]] = []  # (first seen, path, id)

    def file(self, source: SourceFile) -> None:
        try:
            raw, done = inspect(self._settings, self._root, source, self._now)
        except SourceError as exc:
            self.problems += 1
            print(f"{source.path}: ERROR {exc.reason}")
            return
        if isinstance(done, str):
            self.skipped += 1
            print(f"{source.path}: skipped ({done})")
            return
        item = done.item
        self._counted[source.path] = _listing(item, self._now)
        self.tally[self._counted[source.path]] += 1
        self.tally["warnings"] += len(raw.warnings) + len(done.warnings)
        self._claims.append((first_seen(source.mtime_ns, self._now), source.path, item.id))
        print(f"{source.path}:")
        for warning in raw.warnings + done.warnings:
            print(f"  warning:    {warning}")
        _print_item(item, done.dates)
        self._references(source, raw, item)

    def _references(self, source: SourceFile, raw: RawDocument, item: Item) -> None:
        """Warn of each local reference whose target is outside the folder or missing."""
        rules = self._settings.content.rules
        refs = document_references(source.path, item.url, self._settings.site, rules)
        image = next(
            (v for k in ("image", "cover", "thumbnail") if isinstance(v := raw.meta.get(k), str)),
            None,
        )
        ignore = self._settings.content.ignore
        for ref in local_references(raw.body_html, image, refs):
            if ref.path is None:
                self.missing += 1
                print(f"  warning:    {ref.reference!r} points outside the content folder")
            elif not target_exists(self._root, ref.path, rules.document_extensions) or (
                ref.path and not walked_by_name(ref.path, ignore)
            ):
                self.missing += 1
                print(f"  warning:    {ref.reference!r}: {ref.path} does not exist")

    def refuse_collisions(self) -> int:
        """Print each file refused its id, as a scan of a new folder would (claims.py);
        return how many."""
        refused = _collisions(self._claims)
        for path, reason in refused:
            self.tally[self._counted[path]] -= 1  # refused: not an item after all
            print(f"{path}: ERROR {reason}")
        return len(refused)


def _print_item(item: Item, dates: ItemDates) -> None:
    print(f"  id:         {item.id}")
    print(f"  guid:       {item.guid}")
    print(f"  url:        {item.url}")
    print(f"  title:      {item.title}")
    print(f"  language:   {item.language}")
    cats = ", ".join(f"{c.name} ({c.slug})" for c in item.categories)
    print(f"  categories: {cats}")
    if item.tags:
        print(f"  tags:       {', '.join(item.tags)}")
    print(f"  authors:    {', '.join(item.authors)}")
    published = _dated(item.published, dates.published_from, dates.published_guessed)
    print(f"  published:  {published}")
    print(f"  updated:    {_dated(item.updated, dates.updated_from, dates.updated_guessed)}")
    print(f"  image:      {item.image or '-'}")
    print(f"  draft:      {'yes' if item.draft else 'no'}")
    summary = item.summary if len(item.summary) <= 120 else item.summary[:119] + "…"
    print(f"  summary:    {summary}")


def _collisions(claims: list[tuple[datetime, str, str]]) -> list[tuple[str, str]]:
    """(path, error) of each file refused its id, as a scan of a new folder would (claims.py)."""
    decided = Claims({}, ())
    refused = []
    for _, path, item_id in sorted(claims):
        claim = decided.claim(path, item_id, "")
        if claim.verdict == "refuse":
            assert claim.holder is not None
            refused.append((path, collision_reason(item_id, claim.holder)))
    return sorted(refused)


def _listing(item: Item, now: datetime) -> str:
    """Which count an item of ``check`` goes to (``feedsvc.dates.is_listed``)."""
    if item.draft:
        return "drafts"
    if is_listed(item, now):
        return "items"
    return "scheduled" if shows_at(item) > now else "expired"


def _dated(moment: datetime, source: str, guessed: bool) -> str:
    """A date for ``check``: where it came from, and GUESSED when no author wrote it."""
    return f"{moment.isoformat()} ({'GUESSED from ' if guessed else 'from '}{source})"
