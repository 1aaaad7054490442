"""Finding and reading content files safely; owns no parsing and no change tracking.

``discover`` walks the content root and lists the regular files a scan should
read (docs/documents-and-resources.md); ``read_source`` reads one of them without ever following a
symbolic link or blocking on a FIFO; ``file_hash`` fingerprints the bytes so
the pipeline can tell "did this change?" with one comparison.

Rules, each for a trap met on real folders:

- Symbolic links are never followed, not even to decide what they point at:
  a link (to a file or a folder, inside or outside the root) is reported as
  a ``FileError`` "symbolic link, not followed", so an operator sees why the
  file is not published, and a file that turns into a link keeps its last
  good item instead of vanishing. Not following links also makes directory
  loops (``loop -> .``) impossible.
- Only regular files (``lstat`` + ``S_ISREG``); FIFOs, sockets and devices
  are skipped silently. Hidden names (leading ``.``) are skipped at any
  depth; ``ignore`` globs are matched (fnmatch) against both the relative
  POSIX path and the bare name, for files and folders alike (a matching
  folder is not entered).
- File names that are not UTF-8 keep their undecodable bytes as ``\\xNN``
  escapes in ``SourceFile.path`` (types.py); ``source_fs_path`` turns such a
  path back into the bytes on disk. That is only unambiguous if no real name
  contains the text ``\\xNN`` with NN >= 80, so such a name is reported as an
  error rather than risking two files behind one path.
- The root itself must be a real, readable folder with at least one file:
  anything else raises ``ContentRootError``, never "every item was deleted".
- Each regular file is a document or a resource (``feedsvc.classify``):
  resources are listed apart (``Discovery.resources``), never read and never
  refused for their size; a name the rule cannot decide alone is decided by
  the file's first bytes, read here with the same care as ``read_source``.

A long-lived caller (the watcher) passes a ``Listings``: each folder's entries
are then listed and filtered once and reused while the folder's own mtime and
ctime stay the same (every create, delete or rename of an entry changes them),
so an unchanged rescan does one ``stat`` per file and little else.
"""

from __future__ import annotations

import errno
import fnmatch
import functools
import hashlib
import operator
import os
import re
import stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from feedsvc.classify import DEFAULT_RULES, SNIFF_BYTES, ContentRules, extension
from feedsvc.errors import ContentRootError, SourceError
from feedsvc.types import FileError, SourceFile

# An escape that ``bytes.decode("utf-8", "backslashreplace")`` can produce: only
# bytes >= 0x80 can fail to decode, ASCII always decodes as itself.
_ESCAPE = re.compile(r"\\x([89a-f][0-9a-f])")

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DIR_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC

SYMLINK_REASON = "symbolic link, not followed"
VANISHED_REASON = "file vanished before it could be read"
CHANGING_REASON = "file is being written: it changed while it was read"

_IFMT = 0o170000  # stat.S_IFMT as a mask: one AND per entry instead of a call
_IFREG = stat.S_IFREG
_by_path = operator.attrgetter("path")
_second = operator.itemgetter(1)


# A folder changed less than this before it was listed is listed again next
# time: its timestamps come from a coarse clock (a few ms), so an entry made in
# the same tick, after the listing, would leave them as they were.
_SETTLED_NS = 2_000_000_000


@dataclass(frozen=True, slots=True)
class _Listing:
    """One folder's entries that passed the name rules, as the last listing saw them."""

    stamp: tuple[int, int, int]  # the folder's (inode, mtime_ns, ctime_ns)
    files: tuple[tuple[str, str], ...]  # (name, relative path): stat'ed on every walk
    folders: tuple[tuple[bytes, str, bytes], ...]  # as ``_Walk.pending`` takes them
    errors: tuple[FileError, ...]  # refused by name or kind (links): no stat needed
    resources: tuple[str, ...] = ()  # relative paths of the folder's resources
    ignored: tuple[str, ...] = ()  # relative paths of hidden names and ``content.ignore`` matches


@dataclass(frozen=True, slots=True)
class _Folder:
    """One folder being listed: its open descriptor and its paths."""

    fd: int
    rel_b: bytes  # relative path + b"/" (b"" for the root)
    rel: str  # the same as text, with \\xNN escapes (display_path)
    abs: bytes


@dataclass(slots=True)
class _Kept:
    """A folder's listing while it is being made; ``listing()`` freezes it."""

    files: list[tuple[str, str]] = field(default_factory=list)
    folders: list[tuple[bytes, str, bytes]] = field(default_factory=list)
    errors: list[FileError] = field(default_factory=list)
    resources: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # relative paths skipped by name
    reusable: bool = True

    def listing(self) -> _Listing | None:
        """What a later walk may reuse; None when an entry must be looked at afresh."""
        if not self.reusable:
            return None
        # Files in path order, folders in reverse (``pending`` is a stack): a walk
        # from listings then yields files almost in order, and the final sort is
        # a merge of few runs instead of a full sort.
        self.files.sort(key=_second)
        self.folders.sort(key=_second, reverse=True)
        return _Listing(
            (0, 0, 0),
            tuple(self.files),
            tuple(self.folders),
            tuple(self.errors),
            tuple(self.resources),
            tuple(self.skipped),
        )


class Listings:
    """Folder listings kept between walks of one content root, in one process.

    Only a cache: a walk with or without it finds the same files. A folder is
    listed again when its inode, mtime or ctime moved, or when it had changed
    too recently to trust them (``_SETTLED_NS`` before ``clock_ns()``, which is
    compared with file system timestamps, so it is the real clock by default).
    ``reused`` and ``listed`` count folders since it was made.
    """

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.clock_ns = clock_ns
        self.reused = 0
        self.listed = 0
        self._folders: dict[bytes, _Listing] = {}
        self._rules: tuple[object, ...] | None = None

    def _for_rules(self, rules: tuple[object, ...]) -> dict[bytes, _Listing]:
        if rules != self._rules:  # other ignore globs or size cap: nothing carries over
            self._folders = {}
            self._rules = rules
        return self._folders


@dataclass(frozen=True, slots=True)
class Discovery:
    """What one walk of the content root found: documents to read, entries refused,
    and resources (``feedsvc.classify``: never read, never items).

    ``files``, ``errors`` and ``resources`` are sorted by path.
    """

    files: tuple[SourceFile, ...]
    errors: tuple[FileError, ...]
    resources: tuple[str, ...] = ()
    ignored: int = 0  # entries skipped by name: hidden, or matching ``content.ignore``
    # Their relative paths, sorted (a hidden or ignored folder is one entry, its
    # contents are never listed): what a scoped scan updates (``plan.Census``).
    ignored_paths: tuple[str, ...] = ()


def display_path(raw: bytes) -> str:
    """A file system path (bytes) as valid UTF-8 text, bad bytes as ``\\xNN``."""
    return raw.decode("utf-8", "backslashreplace")


def source_fs_path(path: str) -> bytes:
    """The on-disk relative path (bytes) of a ``SourceFile.path``; reverses ``\\xNN``."""
    # surrogateescape maps byte 0xNN (>= 0x80) to U+DCNN and back.
    unescaped = _ESCAPE.sub(lambda m: chr(0xDC00 + int(m.group(1), 16)), path)
    return unescaped.encode("utf-8", "surrogateescape")


def file_hash(data: bytes) -> str:
    """Fingerprint of a file's bytes: blake2b with a 16-byte digest, as hex."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def too_big_reason(size: int, max_bytes: int) -> str:
    return f"file is {size:,} bytes, over content.max_file_bytes ({max_bytes:,})"


def _ignore_pattern(ignore: Iterable[str]) -> re.Pattern[str] | None:
    """All ignore globs as one compiled regex: one match per name, not one per glob."""
    globs = [fnmatch.translate(g) for g in ignore]
    return re.compile("|".join(globs)) if globs else None


@functools.lru_cache(maxsize=8)
def _ignore_pattern_cached(ignore: tuple[str, ...]) -> re.Pattern[str] | None:
    return _ignore_pattern(ignore)


def walked_by_name(path: str, ignore: tuple[str, ...]) -> bool:
    """Whether a walk would reach the relative ``path`` by its names alone: no
    hidden part, no part matching ``ignore`` (as ``_Walk._list`` matches them)."""
    parts = path.split("/")
    ignored = _ignore_pattern_cached(ignore)
    for depth, part in enumerate(parts):
        if not part or part.startswith("."):
            return False
        if ignored is not None and (
            ignored.match(part) or (depth and ignored.match("/".join(parts[: depth + 1])))
        ):
            return False
    return True


def _check_root(root: Path) -> None:
    try:
        st = os.lstat(root)
    except FileNotFoundError as exc:
        raise ContentRootError(root, "does not exist") from exc
    except OSError as exc:
        raise ContentRootError(root, f"cannot be read: {exc.strerror}") from exc
    if stat.S_ISLNK(st.st_mode):
        # A root swapped for a link must not silently publish (or drop) a different tree.
        raise ContentRootError(root, "is a symbolic link; set content.path to the real folder")
    if not stat.S_ISDIR(st.st_mode):
        raise ContentRootError(root, "is not a folder")


def discover(
    root: Path,
    ignore: tuple[str, ...],
    max_bytes: int,
    listings: Listings | None = None,
    rules: ContentRules = DEFAULT_RULES,
) -> Discovery:
    """List the regular files under ``root``, with entries refused and why.

    Raises ``ContentRootError`` when the root is missing, not a folder, a
    symbolic link, unreadable, or holds no file at all after skipping.
    ``listings`` (optional) reuses unchanged folders' listings between calls.
    ``rules`` tell documents from resources (``content.*_extensions``).
    """
    _check_root(root)
    walk = _Walk(_ignore_pattern(ignore), max_bytes, rules)
    if listings is not None:
        walk.listings = listings
        walk.cache = listings._for_rules((os.fsencode(root), ignore, max_bytes, rules))
    try:
        walk.folder(b"", "", os.fsencode(root))
    except OSError as exc:
        raise ContentRootError(root, f"cannot be read: {exc.strerror}") from exc
    walk.drain()
    if not walk.files and not walk.resources:
        raise ContentRootError(root, "has no files")
    return walk.found()


def discover_paths(
    root: Path,
    paths: Iterable[str],
    ignore: tuple[str, ...],
    max_bytes: int,
    rules: ContentRules = DEFAULT_RULES,
) -> Discovery | None:
    """What ``discover`` would find at the relative ``paths`` only (docs/operations.md,
    "Scoped scans"): a file is looked at, a folder walked, a path that is not
    there finds nothing. Every rule of the full walk holds: links are refused,
    not followed; resources are told apart; a hidden or ignored entry is
    counted as ignored, and nothing under one is looked at.

    None when this cannot be trusted to match the full walk: a folder on a
    path is a link, not a folder, or cannot be opened; the caller then walks
    the whole root. Raises ``ContentRootError`` as ``discover`` does for the root.
    """
    _check_root(root)
    walk = _Walk(_ignore_pattern(ignore), max_bytes, rules)
    root_b = os.fsencode(root)
    for path in paths:
        parent = path.rpartition("/")[0]
        if parent and not walked_by_name(parent, ignore):
            continue  # under a hidden or ignored folder: that folder is the entry
        skipped = not walked_by_name(path, ignore)  # itself hidden or ignored
        parent_b, _, name_b = source_fs_path(path).rpartition(b"/")
        try:
            fd = _open_folder(root_b, parent_b)
        except FileNotFoundError:
            continue  # its folder is gone: so is it
        except OSError:
            return None
        rel_b = parent_b + b"/" if parent_b else b""
        at = _Folder(
            fd, rel_b, display_path(rel_b), root_b + b"/" + parent_b if parent_b else root_b
        )
        try:
            if skipped:
                if not _note_skipped(walk, at, name_b, path):
                    return None
            elif not _look_at(walk, at, name_b, path):
                return None
        finally:
            os.close(fd)
    walk.drain()
    return walk.found()


def _open_folder(root_b: bytes, rel_b: bytes) -> int:
    """A descriptor of the folder at ``rel_b`` (b"": the root), opened part by part
    without following a link. Raises OSError (ENOTDIR: a part is a link or a file)."""
    fd = os.open(root_b, _DIR_FLAGS)
    for part in rel_b.split(b"/") if rel_b else ():
        try:
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
        finally:
            os.close(fd)
        fd = inner
    return fd


def _look_at(walk: _Walk, at: _Folder, name_b: bytes, path: str) -> bool:
    """Record the entry ``name_b`` of the open folder ``at`` as its listing would;
    False when it cannot be looked at (the caller walks the whole root)."""
    try:
        st = os.stat(name_b, dir_fd=at.fd, follow_symlinks=False)
    except FileNotFoundError:
        return True  # not there: nothing found
    except OSError:
        return False
    walk._keep(_Kept(), at, os.fsdecode(name_b), path, st)
    return True


def _note_skipped(walk: _Walk, at: _Folder, name_b: bytes, path: str) -> bool:
    """Count the hidden or ignored entry ``name_b`` of the open folder ``at`` if it is
    there, as its listing would; False when it cannot be looked at."""
    try:
        os.stat(name_b, dir_fd=at.fd, follow_symlinks=False)
    except FileNotFoundError:
        return True  # not there: nothing to count
    except OSError:
        return False
    walk.ignored.append(path)
    return True


class _Walk:
    """State of one walk; ``folder`` lists one directory (the hot loop: 50,000 files
    must take well under half a second, so it does one ``lstat`` per entry and
    little else)."""

    def __init__(
        self, patterns: re.Pattern[str] | None, max_bytes: int, rules: ContentRules
    ) -> None:
        self.patterns = patterns  # content.ignore, as one pattern
        self.max_bytes = max_bytes
        self.rules = rules
        self.resources: list[str] = []
        self.ignored: list[str] = []  # relative paths skipped by name
        self.listings: Listings | None = None
        self.cache: dict[bytes, _Listing] | None = None  # the listings' folders
        self.files: list[SourceFile] = []
        self.errors: list[FileError] = []
        # Folders still to list: (relative bytes + b"/", relative text + "/", absolute bytes).
        self.pending: list[tuple[bytes, str, bytes]] = []

    def drain(self) -> None:
        """List every folder still pending; one that cannot be read is an error."""
        while self.pending:
            rel_b, rel, abs_path = self.pending.pop()
            try:
                self.folder(rel_b, rel, abs_path)
            except OSError as exc:
                if exc.errno != errno.ENOENT:  # a folder that vanished mid-walk is just gone
                    self.errors.append(
                        FileError(rel[:-1], f"folder cannot be read: {exc.strerror}")
                    )

    def found(self) -> Discovery:
        self.files.sort(key=_by_path)  # comparing the paths alone: half the cost of tuples
        self.errors.sort(key=_by_path)
        self.resources.sort()
        self.ignored.sort()
        return Discovery(
            tuple(self.files),
            tuple(self.errors),
            tuple(self.resources),
            len(self.ignored),
            tuple(self.ignored),
        )

    def folder(self, rel_dir_b: bytes, rel_dir: str, abs_dir: bytes) -> None:
        # The folder is opened once without following a link, listed through its
        # descriptor, and each entry is stat'ed relative to it (fstatat): no path
        # is resolved again per file, which is a quarter of the cost of a stat.
        fd = os.open(abs_dir, _DIR_FLAGS)
        try:
            if self.cache is None or self.listings is None:
                self._list(_Folder(fd, rel_dir_b, rel_dir, abs_dir))
                return
            st = os.fstat(fd)  # before listing: a change while listing moves the stamp
            stamp = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
            known = self.cache.get(rel_dir_b)
            if known is not None and known.stamp == stamp and self._relisted(fd, known):
                self.listings.reused += 1
                return
            self.cache.pop(rel_dir_b, None)
            self.listings.listed += 1
            listing = self._list(_Folder(fd, rel_dir_b, rel_dir, abs_dir))
            settled = max(st.st_mtime_ns, st.st_ctime_ns) < self.listings.clock_ns() - _SETTLED_NS
            if listing is not None and settled:
                self.cache[rel_dir_b] = replace(listing, stamp=stamp)
        finally:
            os.close(fd)

    def _relisted(self, fd: int, known: _Listing) -> bool:
        """Walk a folder from its cached listing: one stat per file. False (and
        nothing recorded) if an entry is not what the listing said."""
        max_bytes = self.max_bytes
        found: list[SourceFile] = []
        lstat = os.stat
        for name, rel in known.files:
            try:
                st = lstat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                return False
            if st.st_mode & _IFMT != _IFREG or st.st_size > max_bytes:
                return False  # listed again, which says why
            found.append(SourceFile(rel, st.st_size, st.st_mtime_ns))
        self.files += found
        self.errors += known.errors
        self.pending += known.folders
        self.resources += known.resources
        self.ignored += known.ignored
        return True

    def _list(self, at: _Folder) -> _Listing | None:
        """List one folder into the walk; return what a later walk may reuse, if anything."""
        patterns, rel_dir = self.patterns, at.rel
        lstat = os.stat
        kept = _Kept()
        with os.scandir(at.fd) as entries:
            for entry in entries:
                name = entry.name  # text: scandir of a descriptor decodes with surrogateescape
                # A name that is not UTF-8 is shown with \\xNN escapes (display_path);
                # "/" is ASCII, so decoding parts separately equals decoding the whole.
                shown = name if name.isascii() else display_path(os.fsencode(name))
                rel = rel_dir + shown
                if name.startswith(".") or (
                    patterns is not None
                    and (patterns.match(shown) or (rel_dir and patterns.match(rel)))
                ):
                    kept.skipped.append(rel)
                    continue
                try:
                    st = lstat(name, dir_fd=at.fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed between listing and stat: it is simply gone
                except OSError as exc:
                    self.errors.append(FileError(rel, f"cannot be read: {exc.strerror}"))
                    kept.reusable = False
                    continue
                self._keep(kept, at, name, rel, st)
        self.ignored += kept.skipped
        return kept.listing()

    def _keep(self, kept: _Kept, at: _Folder, name: str, rel: str, st: os.stat_result) -> None:
        """Record one entry that passed the name rules, by its kind."""
        kind = st.st_mode & _IFMT
        if kind == _IFREG and self._is_resource(self.rules.by_name(name), at.fd, name):
            self.resources.append(rel)
            kept.resources.append(rel)
        elif kind == _IFREG:
            size = st.st_size
            # The common case costs two comparisons, no call.
            error = (
                self._refusal(rel, at.rel_b + os.fsencode(name), size)
                if size > self.max_bytes or "\\x" in rel
                else None
            )
            if error is None:
                self.files.append(SourceFile(rel, size, st.st_mtime_ns))
                kept.files.append((name, rel))
            else:
                self.errors.append(FileError(rel, error))
                kept.reusable = False  # a refused file is looked at afresh each time
        elif kind == stat.S_IFDIR:
            name_b = os.fsencode(name)
            folder = (at.rel_b + name_b + b"/", rel + "/", at.abs + b"/" + name_b)
            self.pending.append(folder)
            kept.folders.append(folder)
        elif kind == stat.S_IFLNK:
            link = FileError(rel, SYMLINK_REASON)
            self.errors.append(link)
            kept.errors.append(link)
        # FIFO, socket, device: never content, never opened.

    def _is_resource(self, by_name: str | None, fd: int, name: str) -> bool:
        if by_name is not None:
            return by_name == "resource"
        # Neither list names the extension: the first bytes decide. A file that
        # cannot be opened now is left to the reader, which says why.
        try:
            head = read_head(fd, name)
        except OSError:
            return False
        return self.rules.classify(name, head) == "resource"

    def _refusal(self, rel: str, rel_b: bytes, size: int) -> str | None:
        if "\\x" in rel and _ESCAPE.search(rel) and source_fs_path(rel) != rel_b:
            # A real name holding the text "\xe9" would collide with a name holding
            # the byte 0xE9: refuse it rather than publish one file under two names.
            return (
                "file name contains the text '\\xNN', which is reserved for showing "
                "bytes that are not UTF-8; rename the file"
            )
        if size > self.max_bytes:
            return too_big_reason(size, self.max_bytes)
        return None


def read_head(dir_fd: int, name: str, size: int = SNIFF_BYTES) -> bytes:
    """The first ``size`` bytes of ``name`` in the folder ``dir_fd``: never
    following a link, never blocking on a FIFO. Raises OSError."""
    fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b""
        return os.read(fd, size)
    finally:
        os.close(fd)


def _open_error(path: str, exc: OSError) -> SourceError:
    if exc.errno == errno.ELOOP:
        return SourceError(path, SYMLINK_REASON)
    if exc.errno == errno.ENOENT:
        return SourceError(path, VANISHED_REASON)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return SourceError(path, "permission denied")
    if exc.errno == errno.ENOTDIR:
        return SourceError(path, "a folder on its path is no longer a folder")
    return SourceError(path, f"cannot be read: {exc.strerror}")


def open_source(root: Path, path: str) -> int:
    """A descriptor for the file at relative ``path`` under ``root``, opened read-only
    without following any link or blocking (the caller closes it).

    Every path component below (and including) ``root`` is opened with
    ``O_NOFOLLOW``, so a folder swapped for a link is refused too. The type
    is not checked here: ``fstat`` the descriptor. Raises ``SourceError``.
    """
    parts = source_fs_path(path).split(b"/")
    if any(part in (b"", b".", b"..") for part in parts):
        # discover() never yields these; a hand-made path must not climb out of the root.
        raise SourceError(path, "not a path inside the content folder")
    fds: list[int] = []
    try:
        fds.append(os.open(os.fsencode(root), _DIR_FLAGS))
        for part in parts[:-1]:
            try:
                fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
            except NotADirectoryError:
                # O_DIRECTORY|O_NOFOLLOW on a link fails with ENOTDIR: say which.
                st = os.lstat(part, dir_fd=fds[-1])
                if stat.S_ISLNK(st.st_mode):
                    raise SourceError(
                        path, f"a folder on its path is now a {SYMLINK_REASON}"
                    ) from None
                raise
        return os.open(parts[-1], _OPEN_FLAGS, dir_fd=fds[-1])
    except OSError as exc:
        raise _open_error(path, exc) from exc
    finally:
        for opened in reversed(fds):
            os.close(opened)


def target_exists(root: Path, path: str, documents: frozenset[str] = frozenset()) -> bool:
    """Whether ``path`` names a regular file or a folder under ``root`` (no link on
    the way); ``""`` is the root itself. A path without extension also exists
    when a file of that name plus one of ``documents`` (extensions) does."""
    if not path:
        return True
    try:
        fd = open_source(root, path)
    except SourceError:
        if not documents or extension(path.rpartition("/")[2]):
            return False
        return any(target_exists(root, f"{path}{ext}") for ext in sorted(documents))
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    return stat.S_ISREG(mode) or stat.S_ISDIR(mode)


def read_source(root: Path, source: SourceFile, max_bytes: int) -> bytes:
    """The bytes of ``source``, read without following any link or blocking.

    Opened by ``open_source``; ``O_NONBLOCK`` keeps a FIFO from hanging the
    scan. Type and size are checked on ``fstat`` of the open file (it may
    have changed since the walk). Raises ``SourceError`` naming the reason
    for every failure.
    """
    fd = open_source(root, source.path)
    try:
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise SourceError(source.path, "not a regular file (FIFO, socket or device)")
            if st.st_size > max_bytes:
                raise SourceError(source.path, too_big_reason(st.st_size, max_bytes))
            chunks: list[bytes] = []
            remaining = max_bytes + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            after = os.fstat(fd)
        except OSError as exc:
            raise _open_error(source.path, exc) from exc
        data = b"".join(chunks)
        if len(data) > max_bytes:  # it grew after fstat
            raise SourceError(source.path, too_big_reason(len(data), max_bytes))
        # Written to while read, or since it was listed: these bytes may be a
        # half-written version (docs/operations.md, "Settled files").
        listed = (st.st_size, st.st_mtime_ns)
        if (after.st_size, after.st_mtime_ns) != listed or listed != (source.size, source.mtime_ns):
            raise SourceError(source.path, CHANGING_REASON)
        return data
    finally:
        os.close(fd)
