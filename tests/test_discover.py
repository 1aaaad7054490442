"""Discovery and safe reading of content files (docs/documents-and-resources.md)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from feedsvc.discover import Discovery, Listings, discover, file_hash, read_source
from feedsvc.errors import ContentRootError, SourceError
from feedsvc.types import SourceFile

IGNORE = ("*.tmp", "*.swp", "*.part", "*~", "#*#")
MAX = 2_000_000


def scan(root: Path, ignore: tuple[str, ...] = IGNORE, max_bytes: int = MAX) -> Discovery:
    return discover(root, ignore, max_bytes)


def paths(found: Discovery) -> list[str]:
    return [f.path for f in found.files]


def errors(found: Discovery) -> dict[str, str]:
    return {e.path: e.error for e in found.errors}


def source(found: Discovery, path: str) -> SourceFile:
    return next(f for f in found.files if f.path == path)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "content"
    folder.mkdir()
    (folder / "a.txt").write_bytes(b"hello")
    return folder


def test_sample_folder_lists_both_samples(content_dir: Path) -> None:
    found = scan(content_dir)
    assert paths(found) == ["000_a08af95bc486be6a.txt", "002_ad53fbf95e7bb634.txt"]
    assert found.errors == ()
    first = found.files[0]
    stat = (content_dir / first.path).stat()
    assert (first.size, first.mtime_ns) == (stat.st_size, stat.st_mtime_ns)


def test_walks_recursively_sorted_with_posix_paths(root: Path) -> None:
    (root / "b" / "c").mkdir(parents=True)
    (root / "b" / "c" / "deep.md").write_text("x")
    (root / "b" / "z.txt").write_text("x")
    (root / "B.txt").write_text("x")
    assert paths(scan(root)) == ["B.txt", "a.txt", "b/c/deep.md", "b/z.txt"]


def test_hidden_files_and_folders_are_skipped_at_any_depth(root: Path) -> None:
    (root / ".draft.txt").write_text("x")
    (root / ".git").mkdir()
    (root / ".git" / "config").write_text("x")
    (root / "sub" / ".cache").mkdir(parents=True)
    (root / "sub" / ".cache" / "x.txt").write_text("x")
    (root / "sub" / ".hidden.md").write_text("x")
    (root / "sub" / "seen.md").write_text("x")
    found = scan(root)
    assert paths(found) == ["a.txt", "sub/seen.md"]
    assert found.errors == ()


def test_ignore_globs_match_the_name_and_the_relative_path(root: Path) -> None:
    (root / "drafts").mkdir()
    (root / "drafts" / "x.txt").write_text("x")
    (root / "news").mkdir()
    for name in ("a.txt~", "#a.txt#", "b.tmp", "c.swp", "d.part", "kept.txt"):
        (root / "news" / name).write_text("x")
    found = scan(root, ignore=(*IGNORE, "drafts/*"))
    assert paths(found) == ["a.txt", "news/kept.txt"]


def test_an_ignored_folder_is_not_entered(root: Path) -> None:
    (root / "node_modules" / "pkg").mkdir(parents=True)
    (root / "node_modules" / "pkg" / "readme.md").write_text("x")
    assert paths(scan(root, ignore=("node_modules",))) == ["a.txt"]


def test_symlink_to_a_file_outside_the_root_is_never_published(root: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("password")
    (root / "leak.txt").symlink_to(secret)
    (root / "inside.txt").symlink_to(root / "a.txt")
    found = scan(root)
    assert paths(found) == ["a.txt"]
    assert errors(found) == {
        "inside.txt": "symbolic link, not followed",
        "leak.txt": "symbolic link, not followed",
    }


def test_symlinked_folders_are_not_followed_and_loops_terminate(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.txt").write_text("x")
    (root / "loop").symlink_to(".")
    (root / "elsewhere").symlink_to(outside)
    start = time.monotonic()
    found = scan(root)
    assert time.monotonic() - start < 5
    assert paths(found) == ["a.txt"]
    assert set(errors(found)) == {"loop", "elsewhere"}


def test_fifo_sockets_and_devices_are_skipped(root: Path) -> None:
    os.mkfifo(root / "pipe.txt")
    found = scan(root)
    assert paths(found) == ["a.txt"]
    assert found.errors == ()


@pytest.mark.timeout(10)
def test_read_source_never_blocks_on_a_fifo(root: Path) -> None:
    found = scan(root)
    (root / "a.txt").unlink()
    os.mkfifo(root / "a.txt")  # swapped for a FIFO after discovery: no writer ever comes
    with pytest.raises(SourceError) as info:
        read_source(root, source(found, "a.txt"), MAX)
    assert info.value.path == "a.txt"
    assert "not a regular file" in info.value.reason


def test_non_utf8_file_name_is_escaped_and_still_readable(root: Path) -> None:
    fd = os.open(os.fsencode(root) + b"/caf\xe9.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"latin-1 name")
    os.close(fd)
    os.mkdir(os.fsencode(root) + b"/d\xff")
    (Path(os.fsdecode(os.fsencode(root) + b"/d\xff")) / "x.txt").write_text("in odd folder")
    found = scan(root)
    assert paths(found) == ["a.txt", "caf\\xe9.txt", "d\\xff/x.txt"]
    for path in paths(found):
        path.encode("utf-8")  # valid text: storable, loggable, bindable in SQL
    assert read_source(root, source(found, "caf\\xe9.txt"), MAX) == b"latin-1 name"
    assert read_source(root, source(found, "d\\xff/x.txt"), MAX) == b"in odd folder"


def test_a_real_name_spelling_an_escape_is_refused_not_confused(root: Path) -> None:
    # "caf\xe9.txt" as eight literal characters would collide with the byte name.
    (root / "caf\\xe9.txt").write_text("literal")
    fd = os.open(os.fsencode(root) + b"/caf\xe9.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"byte")
    os.close(fd)
    found = scan(root)
    assert paths(found) == ["a.txt", "caf\\xe9.txt"]
    assert read_source(root, source(found, "caf\\xe9.txt"), MAX) == b"byte"
    (refused,) = found.errors
    assert refused.path == "caf\\xe9.txt"
    assert "reserved" in refused.error


def test_plain_backslashes_in_names_are_fine(root: Path) -> None:
    (root / "a\\b x41.txt").write_text("x")
    found = scan(root)
    assert "a\\b x41.txt" in paths(found)
    assert read_source(root, source(found, "a\\b x41.txt"), MAX) == b"x"


def test_oversize_file_is_reported_not_listed(root: Path) -> None:
    (root / "big.txt").write_bytes(b"x" * 3_000_000)
    found = scan(root)
    assert paths(found) == ["a.txt"]
    assert errors(found) == {
        "big.txt": "file is 3,000,000 bytes, over content.max_file_bytes (2,000,000)"
    }


def test_unreadable_subfolder_is_reported_and_the_walk_goes_on(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "locked").mkdir()
    (root / "locked" / "x.txt").write_text("x")
    (root / "open").mkdir()
    (root / "open" / "y.txt").write_text("y")
    real_open = os.open
    locked = os.fsencode(root / "locked")

    def open_(path: bytes, flags: int, *args: object, **kwargs: object) -> int:
        if path == locked:  # chmod 000 does not stop root, so fail the call itself
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", open_)
    found = scan(root)
    assert paths(found) == ["a.txt", "open/y.txt"]
    assert errors(found) == {"locked": "folder cannot be read: Permission denied"}


def test_unreadable_root_is_an_error(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def scandir(path: bytes) -> object:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(ContentRootError, match="cannot be read: Permission denied"):
        scan(root)


def test_read_source_permission_denied(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    found = scan(root)
    (root / "a.txt").chmod(0)
    real_open = os.open

    def refusing_open(path: object, *args: object, **kwargs: object) -> int:
        # chmod 000 does not stop root (CI runs as root), so refuse like the kernel would.
        if os.fsencode(path).endswith(b"a.txt"):  # type: ignore[arg-type]
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(SourceError, match="permission denied"):
        read_source(root, source(found, "a.txt"), MAX)


def test_missing_root_is_an_error_not_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ContentRootError, match="does not exist"):
        scan(tmp_path / "nope")


def test_root_that_is_a_file_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ContentRootError, match="not a folder"):
        scan(tmp_path / "file")


def test_root_swapped_for_a_symlink_is_refused(root: Path, tmp_path: Path) -> None:
    link = tmp_path / "linked"
    link.symlink_to(root)
    with pytest.raises(ContentRootError, match="symbolic link"):
        scan(link)


@pytest.mark.parametrize("leftovers", [(), (".hidden",), ("x.tmp",)])
def test_empty_root_is_an_error_never_delete_everything(
    tmp_path: Path, leftovers: tuple[str, ...]
) -> None:
    folder = tmp_path / "content"
    (folder / "sub").mkdir(parents=True)
    for name in leftovers:
        (folder / name).write_text("x")
    with pytest.raises(ContentRootError, match="has no files"):
        scan(folder)


def test_read_source_returns_the_bytes(root: Path) -> None:
    found = scan(root)
    assert read_source(root, found.files[0], MAX) == b"hello"


def test_read_source_refuses_a_file_turned_into_a_symlink(root: Path, tmp_path: Path) -> None:
    found = scan(root)
    (tmp_path / "secret").write_text("s")
    (root / "a.txt").unlink()
    (root / "a.txt").symlink_to(tmp_path / "secret")
    with pytest.raises(SourceError, match="symbolic link"):
        read_source(root, source(found, "a.txt"), MAX)


def test_read_source_refuses_a_folder_turned_into_a_symlink(root: Path, tmp_path: Path) -> None:
    (root / "sub").mkdir()
    (root / "sub" / "x.txt").write_text("x")
    found = scan(root)
    (root / "sub" / "x.txt").unlink()
    (root / "sub").rmdir()
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "x.txt").write_text("outside")
    (root / "sub").symlink_to(tmp_path / "evil")
    with pytest.raises(SourceError, match="symbolic link"):
        read_source(root, source(found, "sub/x.txt"), MAX)


@pytest.mark.parametrize("path", ["../secret.txt", "/etc/passwd", "sub//x", "./a.txt"])
def test_read_source_stays_inside_the_root(root: Path, tmp_path: Path, path: str) -> None:
    (tmp_path / "secret.txt").write_text("s")
    with pytest.raises(SourceError, match="not a path inside the content folder"):
        read_source(root, SourceFile(path, 1, 0), MAX)


def test_read_source_on_a_vanished_file(root: Path) -> None:
    found = scan(root)
    (root / "a.txt").unlink()
    with pytest.raises(SourceError) as info:
        read_source(root, source(found, "a.txt"), MAX)
    assert info.value.path == "a.txt"
    assert "vanished" in info.value.reason


def test_read_source_checks_the_size_again(root: Path) -> None:
    found = scan(root, max_bytes=10)
    (root / "a.txt").write_bytes(b"x" * 11)  # grew after discovery
    with pytest.raises(SourceError, match=r"file is 11 bytes, over content.max_file_bytes \(10\)"):
        read_source(root, source(found, "a.txt"), 10)


def test_file_hash_is_a_stable_fingerprint() -> None:
    digest = file_hash(b"hello")
    assert digest == file_hash(b"hello")
    assert digest != file_hash(b"hello!")
    assert len(digest) == 32
    int(digest, 16)


# -- folder listings kept between walks (the watcher's rescans) -------------------------

OLD = 1_600_000_000  # 2020: a folder untouched for years, as most of a news archive is


def _age_folders(root: Path) -> None:
    """Date every folder under (and including) ``root`` years back, as if long unchanged."""
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink())]:
        os.utime(folder, (OLD, OLD), follow_symlinks=False)


def _settled_listings() -> Listings:
    # ctime cannot be set back: a clock a minute ahead lets folders aged by
    # _age_folders count as settled, as they would be a few seconds later.
    return Listings(clock_ns=lambda: time.time_ns() + 60_000_000_000)


def _archive(root: Path) -> None:
    (root / "news" / "2024").mkdir(parents=True)
    (root / "news" / "2024" / "one.md").write_text("# one")
    (root / "news" / "two.md").write_text("# two")
    (root / "world").mkdir()
    (root / "world" / "three.md").write_text("# three")
    (root / "world" / "link.md").symlink_to(root / "a.txt")


def _rename(root: Path) -> None:
    (root / "news" / "two.md").rename(root / "news" / "deux.md")


def _to_symlink(root: Path) -> None:
    (root / "world" / "three.md").unlink()
    (root / "world" / "three.md").symlink_to(root / "a.txt")


def _new_folder(root: Path) -> None:
    (root / "world" / "asia").mkdir()
    (root / "world" / "asia" / "four.md").write_text("# four")


def _drop_folder(root: Path) -> None:
    (root / "news" / "2024" / "one.md").unlink()
    (root / "news" / "2024").rmdir()


def _atomic_replace(root: Path) -> None:
    (root / "news" / ".two.md.new").write_text("# two, longer now")
    (root / "news" / ".two.md.new").replace(root / "news" / "two.md")


def _grow_over_cap(root: Path) -> None:
    (root / "world" / "three.md").write_bytes(b"x" * (MAX + 1))


def _to_fifo(root: Path) -> None:
    (root / "news" / "two.md").unlink()
    os.mkfifo(root / "news" / "two.md")


CHANGES = {
    "a file added": lambda root: (root / "news" / "2024" / "five.md").write_text("# five"),
    "a file deleted": lambda root: (root / "world" / "three.md").unlink(),
    "a file renamed": _rename,
    "a file edited in place": lambda root: (root / "news" / "two.md").write_text("# two!"),
    "a file replaced atomically": _atomic_replace,
    "a file turned into a link": _to_symlink,
    "a file over the size cap": _grow_over_cap,
    "a file turned into a FIFO": _to_fifo,
    "a hidden file added": lambda root: (root / "world" / ".draft.md").write_text("x"),
    "an ignored file added": lambda root: (root / "news" / "two.md.tmp").write_text("x"),
    "a folder added": _new_folder,
    "a folder removed": _drop_folder,
}


@pytest.mark.parametrize("change", CHANGES, ids=list(CHANGES))
def test_a_walk_with_kept_listings_finds_what_a_fresh_walk_finds(root: Path, change: str) -> None:
    _archive(root)
    _age_folders(root)
    listings = _settled_listings()
    first = discover(root, IGNORE, MAX, listings)
    assert first == scan(root)
    again = discover(root, IGNORE, MAX, listings)
    assert again == first
    assert (listings.listed, listings.reused) == (4, 4)  # root, news, news/2024, world

    CHANGES[change](root)
    assert discover(root, IGNORE, MAX, listings) == scan(root)


def test_a_folder_changed_moments_ago_is_listed_again(root: Path) -> None:
    # Folder times tick coarsely: a file made in the same tick as a listing,
    # after it, would leave them unchanged. A fresh folder is never trusted.
    _archive(root)
    listings = Listings()
    discover(root, IGNORE, MAX, listings)
    (root / "news" / "late.md").write_text("# late")
    found = discover(root, IGNORE, MAX, listings)
    assert "news/late.md" in paths(found)
    assert listings.reused == 0


def test_other_ignore_rules_start_the_listings_afresh(root: Path) -> None:
    _archive(root)
    _age_folders(root)
    listings = _settled_listings()
    discover(root, IGNORE, MAX, listings)
    found = discover(root, (*IGNORE, "world"), MAX, listings)
    assert found == scan(root, (*IGNORE, "world"))
    assert "world/three.md" not in paths(found)
