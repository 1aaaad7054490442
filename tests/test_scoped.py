"""Scoped scans (docs/operations.md, "Scoped scans"): a scan after file events looks only
at the paths the events named, and must leave the store, the report and /api/status as a
full scan would.

Three layers: the scope decision in microseconds (``plan.scope_for``, ``plan.plan_scoped``);
a scoped scan against a full scan of the same change, store against store; and real
``feedsvc serve`` processes with file events on.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from conftest import wait_until
from test_events import titles, write_story

from feedsvc.discover import Discovery
from feedsvc.plan import (
    MAX_SCOPED_PATHS,
    MAX_SCOPED_STORED,
    Census,
    Conditions,
    plan_scoped,
    scope_for,
)
from feedsvc.scanner import Scanner
from feedsvc.store import Store, open_store
from feedsvc.types import FileError, FileState, SourceFile

NOW = datetime(2026, 1, 1, tzinfo=UTC)
LONG_AGO_NS = 1_700_000_000 * 10**9
CENSUS = Census(
    frozenset({"img/logo.png", "news/pic.png"}), frozenset({".git", "news/.draft.md", "a.md~"})
)


def held(item_id: str | None, error: str | None = None, size: int = 10) -> FileState:
    return FileState(size, LONG_AGO_NS, item_id, error)


KNOWN: dict[str, FileState] = {
    "a.md": held("a"),
    "news/b.md": held("b"),
    "news/c.md": held("c"),
    "news/deep/d.md": held("d"),
    "bad.md": held(None, "front matter never closed"),
    "section.md": held(None),  # a document that is not an item
    "dup.md": held("a", "id a is held by a.md"),  # a refused claimant
    "newsroom.md": held("n"),  # shares a prefix with news/, is not under it
}


# --- the scope decision -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("paths", "census", "renormalise", "why"),
    [
        (None, CENSUS, False, "events could not name the paths"),
        (frozenset({"a.md"}), None, False, "no scan of this process before"),
        (frozenset({"a.md"}), CENSUS, True, "every file is normalised again"),
        (frozenset({"../etc/passwd"}), CENSUS, False, "a path leaving the root"),
        (frozenset({"."}), CENSUS, False, "the root itself"),
        (frozenset({""}), CENSUS, False, "the root itself"),
        (frozenset(f"f{i}.md" for i in range(MAX_SCOPED_PATHS + 1)), CENSUS, False, "too many"),
    ],
)
def test_a_full_scan_when_in_doubt(
    paths: frozenset[str] | None, census: Census | None, renormalise: bool, why: str
) -> None:
    assert scope_for(paths, census, KNOWN, renormalise=renormalise) is None, why


def test_a_folder_holding_too_many_stored_files_is_a_full_scan() -> None:
    known = {f"big/{i}.md": held(str(i)) for i in range(MAX_SCOPED_STORED + 1)}
    assert scope_for({"big"}, CENSUS, known, renormalise=False) is None
    assert scope_for({"big/1.md"}, CENSUS, known, renormalise=False) is not None


def test_the_scope_splits_the_stored_files_without_looking_at_them() -> None:
    scope = scope_for({"news/deep/d.md", "news", "gone.md"}, CENSUS, KNOWN, renormalise=False)
    assert scope is not None
    assert scope.paths == ("gone.md", "news")  # a path inside a named folder is folded in
    assert set(scope.inside) == {"news/b.md", "news/c.md", "news/deep/d.md"}
    # Out of scope: what plan() must still see (failing rows, documents that are not items)...
    assert set(scope.kept) == {"bad.md", "section.md", "dup.md"}
    assert scope.plain == 2  # ...and the plain items, only counted: a.md, newsroom.md
    assert scope.covers("news/x/y.md") and not scope.covers("newsroom.md")


def test_a_scoped_plan_reads_the_named_files_and_counts_the_rest_as_the_store_says() -> None:
    scope = scope_for({"news", "new.md"}, CENSUS, KNOWN, renormalise=False)
    assert scope is not None
    found = Discovery(
        files=(SourceFile("new.md", 5, LONG_AGO_NS), SourceFile("news/b.md", 99, LONG_AGO_NS)),
        errors=(),
        resources=("news/other.png",),
    )
    last_errors = (
        FileError("bad.md", "front matter never closed"),
        FileError("huge.md", "file is 9 bytes, over content.max_file_bytes (1)"),
        FileError("news/link.md", "symbolic link, not followed"),
    )
    todo, whole = plan_scoped(found, scope, Conditions(NOW), last_errors)
    assert [source.path for source in todo.read] == ["new.md", "news/b.md"]
    assert todo.gone == ("news/c.md", "news/deep/d.md")  # named folder, not found again
    # a.md, newsroom.md (plain) + bad.md (failing, carried): never stat'ed.
    assert todo.unchanged == 3 and todo.skipped == 1
    assert todo.errors == (FileError("bad.md", "front matter never closed"),)
    assert todo.claiming == {"dup.md": ("a", "id a is held by a.md")}
    assert "dup.md" in todo.claimants  # read again if its id opens
    # Discovery's refusals out of scope carry over; those in scope are decided again.
    assert dict(todo.failing) == {"huge.md": last_errors[1].error}
    assert whole.resources == ("img/logo.png", "news/other.png")
    # Ignored entries in a named folder are decided again (none found): the rest stay.
    assert whole.ignored_paths == (".git", "a.md~") and whole.ignored == 2
    assert len(whole.files) + scope.plain == 7  # documents: 2 found + 3 kept + 2 plain


def test_a_scoped_plan_with_nothing_changed_reads_nothing() -> None:
    scope = scope_for({"a.md"}, CENSUS, KNOWN, renormalise=False)
    assert scope is not None
    found = Discovery((SourceFile("a.md", 10, LONG_AGO_NS),), ())
    todo, _ = plan_scoped(found, scope, Conditions(NOW), ())
    assert todo.read == () and todo.gone == ()
    # Every item and the failing bad.md, as a full scan counts them.
    assert (todo.unchanged, todo.skipped) == (6, 1)


# --- a scoped scan leaves what a full scan leaves -----------------------------------------------


def story(item_id: str, title: str, extra: str = "") -> str:
    return f"---\nid: {item_id}\ntitle: {title}\nlang: en\n{extra}---\n{title} body.\n"


BASE: dict[str, str] = {
    "a.md": story("story-a", "Story A"),
    "c.md": story("story-c", "Story C"),
    "bad.md": "---\ntitle: never closed\n",
    "warn.md": story("story-w", "Warned", "date: 2024-13-45\n"),
    "big.md": story("story-big", "Big", "x: " + "y" * 3000 + "\n"),
    "sec0/one.md": story("story-one", "One"),
    "sec0/two.md": story("story-two", "Two"),
    "img.png": "not really a png",
    ".git/HEAD": "ref: refs/heads/main",  # a hidden folder: one ignored entry
    "notes.swp": "editor swap file",  # content.ignore's *.swp
}


class Twin:
    """One content folder, two stores: ``scoped`` scans the named paths, ``full`` the root."""

    def __init__(self, tmp_path: Path, make_settings, store_url: str) -> None:
        self.root = tmp_path / "content"
        self.root.mkdir()
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        self.now = NOW
        for name, text in BASE.items():
            self.write(name, text)
        self.stores: list[Store] = []
        self.scanners: list[Scanner] = []
        for url in (store_url, f"sqlite:///{tmp_path / 'full.sqlite3'}"):
            settings = make_settings(
                self.root, url, content_settle_seconds="0", content_max_file_bytes="2000"
            )
            store = open_store(settings.store.url)
            self.stores.append(store)
            self.scanners.append(Scanner(settings, store, lambda: self.now))
        for scanner in self.scanners:
            scanner.run()  # the census: a scoped scan needs one full scan first

    def write(self, name: str, text: str) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (NOW.timestamp(), NOW.timestamp()))

    def both(self, paths: set[str]) -> tuple[dict, dict]:
        """Scan scoped and full; the two reports, as /api/status shows them."""
        self.now += timedelta(minutes=1)
        scoped = self.scanners[0].run_after(paths=frozenset(paths)).as_json()
        full = self.scanners[1].run().as_json()
        for report in (scoped, full):
            report.pop("duration_ms")
        return scoped, full

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture
def twin(tmp_path: Path, make_settings, store_url: str):
    made = Twin(tmp_path, make_settings, store_url)
    yield made
    made.close()


def _rename(twin: Twin, old: str, new: str) -> None:
    (twin.root / new).parent.mkdir(parents=True, exist_ok=True)
    os.rename(twin.root / old, twin.root / new)


def _move_folder_in(twin: Twin) -> None:
    (twin.outside / "sec").mkdir()
    for n in range(3):
        (twin.outside / "sec" / f"s{n}.md").write_text(story(f"story-s{n}", f"S{n}"))
    (twin.outside / "sec" / "pic.png").write_bytes(b"\x89PNG")
    os.rename(twin.outside / "sec", twin.root / "sec")


CHANGES: dict[str, tuple[Callable[[Twin], object], set[str]]] = {
    "new file": (lambda t: t.write("new.md", story("story-new", "New")), {"new.md"}),
    "edited file": (lambda t: t.write("a.md", story("story-a", "Story A, edited")), {"a.md"}),
    "deleted file": (lambda t: (t.root / "c.md").unlink(), {"c.md"}),
    "file moved to a new folder": (
        lambda t: _rename(t, "a.md", "moved/a2.md"),
        {"a.md", "moved", "moved/a2.md"},
    ),
    "folder moved in from outside": (_move_folder_in, {"sec"}),
    "folder deleted": (lambda t: shutil.rmtree(t.root / "sec0"), {"sec0", "sec0/one.md"}),
    "folder renamed": (lambda t: _rename(t, "sec0", "sec1"), {"sec0", "sec1"}),
    "new file claiming a held id": (
        lambda t: t.write("dup.md", story("story-a", "Impostor")),
        {"dup.md"},
    ),
    "a link": (lambda t: os.symlink(t.root / "a.md", t.root / "link.md"), {"link.md"}),
    "a resource": (lambda t: t.write("img2.png", "x"), {"img2.png"}),
    "a file made too big": (
        lambda t: t.write("c.md", story("story-c", "C", "x: " + "y" * 3000 + "\n")),
        {"c.md"},
    ),
    "a hidden file": (lambda t: t.write(".draft.md", story("story-h", "H")), {".draft.md"}),
    "a file ignored by pattern": (lambda t: t.write("sec0/x.tmp", "x"), {"sec0/x.tmp"}),
    "an ignored file deleted": (lambda t: (t.root / "notes.swp").unlink(), {"notes.swp"}),
    "a file inside a hidden folder": (lambda t: t.write(".git/index", "x"), {".git/index"}),
    "a hidden folder deleted": (
        lambda t: shutil.rmtree(t.root / ".git"),
        {".git", ".git/HEAD"},
    ),
    "a hidden folder made": (
        lambda t: t.write(".cache/x.md", story("story-x", "X")),
        {".cache", ".cache/x.md"},
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_scoped_scan_leaves_what_a_full_scan_leaves(
    twin: Twin, change: str, caplog: pytest.LogCaptureFixture
) -> None:
    make, paths = CHANGES[change]
    make(twin)
    caplog.set_level(logging.INFO, logger="feedsvc.pipeline")
    scoped, full = twin.both(paths)
    assert "from file events)" in caplog.text  # it was scoped, not a full walk
    assert scoped == full  # counts.ignored included
    assert twin.stores[0].file_states() == twin.stores[1].file_states()
    assert twin.stores[0].item_counts(twin.now) == twin.stores[1].item_counts(twin.now)
    # Out-of-scope problems are still reported: /api/status keeps them.
    errors = {error["path"] for error in scoped["errors"]}
    assert {"bad.md", "big.md"} <= errors
    assert [w["path"] for w in scoped["warnings"]] == ["warn.md"]


def test_a_claimant_out_of_scope_takes_the_id_its_holder_gave_up(twin: Twin) -> None:
    twin.write("dup.md", story("story-a", "Impostor"))
    for scanner in twin.scanners:
        scanner.run()
    (twin.root / "a.md").unlink()
    scoped, full = twin.both({"a.md"})  # dup.md is not named: the store knows it waits
    assert scoped == full
    assert "dup.md" not in {error["path"] for error in scoped["errors"]}
    assert twin.stores[0].file_states()["dup.md"].item_id is not None
    assert twin.stores[0].file_states()["dup.md"].error is None


def test_a_moved_file_keeps_its_id_and_its_first_seen_time(twin: Twin) -> None:
    before = twin.stores[0].files(["a.md"])["a.md"]
    _rename(twin, "a.md", "archive/a.md")
    scoped, _ = twin.both({"a.md", "archive/a.md"})
    assert (scoped["added"], scoped["removed"]) == (0, 0)
    after = twin.stores[0].files(["archive/a.md"])["archive/a.md"]
    assert (after.item_id, after.first_seen) == (before.item_id, before.first_seen)


def test_a_folder_on_the_path_turned_into_a_link_is_a_full_scan(
    twin: Twin, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.move(twin.root / "sec0", twin.outside / "sec0")
    os.symlink(twin.outside / "sec0", twin.root / "sec0")
    caplog.set_level(logging.INFO, logger="feedsvc.pipeline")
    scoped, full = twin.both({"sec0/one.md"})
    assert "a full scan after file events naming 1 path" in caplog.text
    assert scoped == full
    assert "sec0" in {error["path"] for error in scoped["errors"]}


# --- through a real server ----------------------------------------------------------------------


def test_a_written_file_is_published_by_a_scan_of_that_path_alone(content_dir: Path, serve) -> None:
    server = serve(content_dir, watch_interval_seconds="3600", content_settle_seconds="0")
    server.wait_for_log(r"scan finished")
    feed = server.url + "/feeds/all/all.atom"
    write_story(content_dir, "breaking.md", "Breaking: dam opened")
    wait_until(lambda: "Breaking: dam opened" in titles(feed), what=lambda: "".join(server.log))
    line = server.wait_for_log(r"scan finished \(scan of 1 path from file events\)")
    assert "1 added" in line
    status = requests.get(server.url + "/api/status", timeout=10).json()
    assert status["last_scan"]["counts"]["documents"] == 3


def test_a_change_no_event_named_is_caught_by_the_scheduled_full_scan(
    content_dir: Path, serve, tmp_path: Path
) -> None:
    # A file written through a hard link outside the root changes under the root
    # without an event there: only the scheduled full scan can see it.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_story(elsewhere, "late.md", "Early edition")
    os.link(elsewhere / "late.md", content_dir / "late.md")
    server = serve(content_dir, watch_interval_seconds="3", content_settle_seconds="0")
    server.wait_for_log(r"file events on")
    feed = server.url + "/feeds/all/all.atom"
    wait_until(lambda: "Early edition" in titles(feed), what=lambda: "".join(server.log))
    write_story(elsewhere, "late.md", "Late edition")  # the same inode, rewritten
    wait_until(lambda: "Late edition" in titles(feed), what=lambda: "".join(server.log))
    assert not any("after file events" in line for line in server.log), "".join(server.log)


def test_a_delete_and_a_move_through_events(content_dir: Path, serve) -> None:
    write_story(content_dir, "keep.md", "Kept story")
    write_story(content_dir, "drop.md", "Dropped story")
    server = serve(content_dir, watch_interval_seconds="3600", content_settle_seconds="0")
    server.wait_for_log(r"scan finished")
    feed = server.url + "/feeds/all/all.json"

    def items() -> dict[str, str]:
        answer = requests.get(feed, timeout=10).json()
        return {item["title"]: item["id"] for item in answer["items"]}

    before = items()
    (content_dir / "drop.md").unlink()
    (content_dir / "archive").mkdir()
    os.rename(content_dir / "keep.md", content_dir / "archive" / "keep.md")
    wait_until(
        lambda: (
            "Dropped story" not in items()
            and any("scan of" in line and "1 removed" in line for line in server.log)
        ),
        what=lambda: "".join(server.log),
    )
    after = items()
    assert after["Kept story"] == before["Kept story"]  # the same bytes keep their id
    assert len(after) == len(before) - 1


def test_a_claim_on_an_id_held_out_of_scope_is_refused_naming_the_holder(
    content_dir: Path, serve
) -> None:
    (content_dir / "holder.md").write_text(story("story-42", "The holder"), encoding="utf-8")
    server = serve(content_dir, watch_interval_seconds="3600", content_settle_seconds="0")
    server.wait_for_log(r"scan finished")
    (content_dir / "claimant.md").write_text(story("story-42", "A claimant"), encoding="utf-8")
    line = server.wait_for_log(r"scan finished \(scan of 1 path from file events\)")
    assert "1 failed" in line
    status = requests.get(server.url + "/api/status", timeout=10).json()
    errors = {error["path"]: error["error"] for error in status["errors"]}
    assert "holder.md" in errors["claimant.md"]
    feed = requests.get(server.url + "/feeds/all/all.json", timeout=10).json()
    assert "The holder" in [item["title"] for item in feed["items"]]
