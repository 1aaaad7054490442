"""The scan's decisions, without a store or a file system: plan.py before reading, ledger.py after.

Every input is built by hand (``SourceFile``, ``FileState``, ``StoredFile``,
outcomes), so each rule of docs/operations.md ("Settled files"),
docs/identity.md and docs/dates.md is checked in microseconds.
"""

from __future__ import annotations

import pickle
from datetime import UTC, datetime, timedelta

import pytest

from feedsvc.claims import collision_reason
from feedsvc.dates import EPOCH, FileTimes, epoch_ns, file_times, first_seen
from feedsvc.discover import Discovery
from feedsvc.ledger import Candidate, Ledger
from feedsvc.outcome import Changing, Failed, Outcome, Parsed, Same, Skipped, Vanished
from feedsvc.plan import (
    Conditions,
    Holdings,
    ScanPlan,
    StoredClaims,
    carried_warnings,
    departures,
    holdings,
    plan,
    read_order,
    rows_wanted,
    start_claims,
    stored_claims,
)
from feedsvc.types import (
    FileError,
    FileState,
    FileWarning,
    Item,
    ScanReport,
    SourceFile,
    StoredFile,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=30)


def ns(moment: datetime) -> int:
    return epoch_ns(moment)


def source(path: str, *, size: int = 10, at: datetime = LONG_AGO) -> SourceFile:
    return SourceFile(path, size, ns(at))


def state(
    src: SourceFile, item_id: str | None = None, error: str | None = None, *, size: int = 0
) -> FileState:
    """The stored fingerprint of ``src`` (``size`` > 0: a different size, so it changed)."""
    return FileState(size or src.size, src.mtime_ns, item_id, error)


def row(
    src: SourceFile,
    item_id: str | None,
    *,
    digest: str = "h",
    seen: datetime = LONG_AGO,
    error: str | None = None,
) -> StoredFile:
    return StoredFile(src.path, src.size, src.mtime_ns, digest, item_id, seen, None, error)


def found(*files: SourceFile, errors: tuple[FileError, ...] = ()) -> Discovery:
    return Discovery(tuple(sorted(files)), errors)


def item(item_id: str, path: str, content_hash: str = "c1") -> Item:
    return Item(
        id=item_id,
        guid=f"urn:{item_id}",
        source_path=path,
        url=f"https://example.org/{item_id}",
        title=item_id,
        summary="",
        content_html="",
        content_text="",
        language="en",
        categories=(),
        tags=(),
        image=None,
        authors=("A",),
        published=LONG_AGO,
        updated=LONG_AGO,
        content_hash=content_hash,
    )


def parsed(item_id: str, path: str, *, digest: str = "h", seen: datetime = LONG_AGO) -> Parsed:
    return Parsed(item(item_id, path), digest, FileTimes(seen))


def no_redo(src: SourceFile, prev: StoredFile | None, moved: StoredFile | None) -> Outcome:
    raise AssertionError("read again unexpectedly")


def never_reread(path: str) -> Candidate | None:
    raise AssertionError("read again unexpectedly")


# --- plan: what to read -----------------------------------------------------------------------


def test_new_and_changed_files_are_read_unchanged_ones_are_counted() -> None:
    new, same, changed, section = (
        source("new.md"),
        source("same.md"),
        source("ch.md"),
        source("s.md"),
    )
    known = {
        "same.md": state(same, "same"),
        "ch.md": state(changed, "ch", size=99),
        "s.md": state(section),  # no id, no error: a document that is not an item
    }
    todo = plan(found(new, same, changed, section), known, Conditions(NOW))
    assert [s.path for s in todo.read] == ["ch.md", "new.md"]
    assert (todo.unchanged, todo.skipped, todo.errors, todo.gone) == (1, 1, (), ())
    assert todo.deferred == () and not todo.idle


def test_an_unchanged_scan_is_idle() -> None:
    files = [source(f"{i}.md") for i in range(3)]
    todo = plan(found(*files), {f.path: state(f, f.path) for f in files}, Conditions(NOW))
    assert todo.idle and todo.unchanged == 3 and todo.read == ()


def test_an_unchanged_failing_file_keeps_its_error_without_a_read() -> None:
    bad = source("bad.md")
    todo = plan(found(bad), {"bad.md": state(bad, error="broken")}, Conditions(NOW))
    assert todo.read == () and todo.unchanged == 1
    assert todo.errors == (FileError("bad.md", "broken"),)


def test_new_settings_read_every_file_again() -> None:
    same = source("same.md")
    todo = plan(found(same), {"same.md": state(same, "same")}, Conditions(NOW, renormalise=True))
    assert todo.read == (same,) and todo.unchanged == 0


@pytest.mark.parametrize(
    ("age", "pending"),
    [
        (timedelta(seconds=1), True),  # written a second ago: still settling
        (timedelta(seconds=-10), True),  # stamped after the scan began: written during it
        (timedelta(seconds=3), False),  # older than the window: settled
        (timedelta(minutes=-10), False),  # far in the future: clock skew, read it
    ],
)
def test_a_file_modified_within_the_settle_window_is_pending(age: timedelta, pending: bool) -> None:
    new, changed = source("new.md", at=NOW - age), source("ch.md", at=NOW - age)
    known = {"ch.md": state(changed, "ch", size=99)}
    todo = plan(found(new, changed), known, Conditions(NOW, settle_seconds=2))
    assert todo.deferred == (("ch.md", "new.md") if pending else ())
    assert len(todo.read) == (0 if pending else 2)


def test_without_a_settle_window_nothing_is_pending() -> None:
    new = source("new.md", at=NOW)
    assert plan(found(new), {}, Conditions(NOW)).read == (new,)


def test_stored_files_not_found_are_gone_and_discovery_refusals_are_kept() -> None:
    kept = source("kept.md")
    known = {"kept.md": state(kept, "k"), "b.md": state(source("b.md")), "a.md": state(kept)}
    refused = (FileError("big.md", "too big"),)
    todo = plan(found(kept, errors=refused), known, Conditions(NOW))
    assert todo.gone == ("a.md", "b.md")
    assert todo.failing == {"big.md": "too big"}


def test_a_failing_file_naming_an_id_is_judged_after_reading() -> None:
    waits, changed = source("waits.md"), source("changed.md")
    known = {
        "waits.md": state(waits, "x", "refused"),
        "changed.md": state(changed, "y", "refused", size=99),
    }
    todo = plan(found(waits, changed), known, Conditions(NOW))
    assert todo.claiming == {"waits.md": ("x", "refused")}
    assert todo.errors == () and todo.unchanged == 0 and todo.read == (changed,)
    assert set(todo.claimants) == {"waits.md", "changed.md"}  # both may be read for an open id


# --- plan: ids and order ----------------------------------------------------------------------


def test_a_failing_row_holds_its_id_when_the_store_kept_its_item() -> None:
    known = {
        "ok.md": FileState(1, 1, "a", None),
        "holder.md": FileState(1, 1, "b", "now broken"),
        "waiter.md": FileState(1, 1, "b", "refused"),
        "plain.md": FileState(1, 1, None, None),
    }
    claimed = stored_claims(known)
    assert claimed == StoredClaims({"a": "ok.md"}, {"holder.md": "b", "waiter.md": "b"})
    assert claimed.failing_ids() == {"b"}
    held = holdings(claimed, {"b": "holder.md"})
    assert held == Holdings({"a": "ok.md", "b": "holder.md"}, {"b": ("waiter.md",)})


def test_files_are_read_in_the_order_they_were_first_seen_then_by_path() -> None:
    old = source("z-old.md", at=NOW - timedelta(days=1))  # stored: first seen long ago
    b, a = source("b.md", at=NOW - timedelta(hours=1)), source("a.md", at=NOW - timedelta(hours=1))
    late = source("late.md", at=NOW - timedelta(minutes=1))
    future = source("future.md", at=NOW + timedelta(days=1))  # first seen now, not tomorrow
    known = {"z-old.md": state(old, "o", size=99)}
    todo = plan(found(future, late, b, a, old), known, Conditions(NOW))
    rows = {"z-old.md": row(old, "o", seen=LONG_AGO)}
    order = [s.path for s in read_order(todo, rows, NOW)]
    assert order == ["z-old.md", "a.md", "b.md", "late.md", "future.md"]


def test_a_gone_holder_opens_its_id_and_a_refused_folder_keeps_its_items() -> None:
    here = source("here.md")
    holder, locked = source("old/holder.md"), source("locked/a.md")
    known = {
        "here.md": state(here, "h"),
        "old/holder.md": state(holder, "moved"),
        "locked/a.md": state(locked, "l"),
    }
    refused = (FileError("locked", "permission denied"),)
    todo = plan(found(here, errors=refused), known, Conditions(NOW))
    held = holdings(stored_claims(known), {})
    assert rows_wanted(todo, known, held) == ["locked/a.md", "old/holder.md"]
    rows = {"old/holder.md": row(holder, "moved"), "locked/a.md": row(locked, "l")}
    claims = start_claims(todo, held, rows)
    assert claims.open_ids() == ("moved",) and claims.holder("l") == "locked/a.md"
    gone = departures(todo, rows)
    assert gone.removed == ("old/holder.md",)
    assert [(r.path, r.error) for r in gone.kept] == [("locked/a.md", "permission denied")]
    assert gone.errors == (FileError("locked", "permission denied"),)


def test_warnings_of_files_not_read_again_carry_over() -> None:
    kept, read = source("kept.md"), source("read.md")
    known = {
        "kept.md": state(kept, "k"),
        "read.md": state(read, "r", size=99),
        "gone.md": state(kept),
    }
    todo = plan(found(kept, read), known, Conditions(NOW))
    last = [FileWarning(p, "odd date") for p in ("kept.md", "read.md", "gone.md", "never.md")]
    assert carried_warnings(last, known, todo) == [FileWarning("kept.md", "odd date")]


# --- dates ------------------------------------------------------------------------------------


def test_file_times_clamp_to_now_and_change_only_with_new_bytes_of_an_item() -> None:
    tomorrow = ns(NOW + timedelta(days=1))
    assert file_times(tomorrow, None, "h", NOW) == FileTimes(NOW)
    assert first_seen(ns(LONG_AGO), NOW) == LONG_AGO
    assert epoch_ns(EPOCH) == 0
    src = source("a.md", at=NOW - timedelta(hours=1))
    was_item = row(src, "a", digest="old")
    assert file_times(src.mtime_ns, was_item, "old", NOW) == FileTimes(LONG_AGO)
    assert file_times(src.mtime_ns, was_item, "new", NOW) == FileTimes(
        LONG_AGO, NOW - timedelta(hours=1)
    )
    # A file that never made an item: its first good version is no change.
    failed_first = row(src, None, digest="old", error="broken")
    assert file_times(src.mtime_ns, failed_first, "new", NOW) == FileTimes(LONG_AGO)


# --- ledger: what each outcome means ---------------------------------------------------------


def ledger_for(
    todo: ScanPlan, known: dict[str, FileState], rows: dict[str, StoredFile] | None = None
) -> Ledger:
    held = holdings(stored_claims(known), {})
    return Ledger(todo, start_claims(todo, held, rows or {}), NOW)


def test_each_outcome_counts_once_and_is_staged_as_the_store_needs() -> None:
    files = {p: source(p) for p in ("new.md", "edit.md", "same.md", "touch.md", "sec.md")}
    known = {
        "edit.md": state(files["edit.md"], "edit", size=99),
        "same.md": state(files["same.md"], "same", size=99),
        "touch.md": state(files["touch.md"], "touch", size=99),
    }
    todo = plan(found(*files.values()), known, Conditions(NOW))
    rows = {p: row(files[p], known[p].item_id) for p in known}
    ledger = ledger_for(todo, known, rows)
    outcomes: dict[str, Outcome] = {
        "new.md": parsed("new", "new.md"),
        "edit.md": parsed("edit", "edit.md"),
        "same.md": parsed("same", "same.md"),
        "touch.md": Same("h"),
        "sec.md": Skipped("a section page", "h", FileTimes(LONG_AGO)),
    }
    for src in read_order(todo, rows, NOW):
        ledger.record(src, rows.get(src.path), outcomes[src.path], no_redo)
    assert ledger.held_ids() == ["edit", "same"]
    files_staged, items = ledger.flush({"edit": "old-hash", "same": "c1"})
    assert sorted(i.id for i in items) == ["edit", "new"]
    assert {f.path for f in files_staged} == set(files)
    report = ledger.report(ScanReport())
    assert (report.added, report.updated, report.unchanged, report.skipped) == (1, 1, 2, 1)
    assert ledger.pending == [] and ledger.files == []


def test_vanished_changing_and_failing_files_keep_their_last_good_state() -> None:
    gone_now, busy, bad, bad_new = (source(p) for p in ("v.md", "busy.md", "bad.md", "new.md"))
    known = {p.path: state(p, p.path, size=99) for p in (gone_now, busy, bad)}
    todo = plan(found(gone_now, busy, bad, bad_new), known, Conditions(NOW))
    rows = {p.path: row(p, p.path) for p in (gone_now, busy, bad)}
    ledger = ledger_for(todo, known, rows)
    ledger.record(gone_now, rows["v.md"], Vanished(), no_redo)
    ledger.record(busy, rows["busy.md"], Changing(), no_redo)
    ledger.record(bad, rows["bad.md"], Failed("broken", "h2"), no_redo)
    ledger.record(bad_new, None, Failed("unreadable"), no_redo)
    report = ledger.report(ScanReport())
    assert report.pending == ("busy.md",)
    assert report.errors == (FileError("bad.md", "broken"), FileError("new.md", "unreadable"))
    by_path = {f.path: f for f in ledger.latest_files()}
    assert set(by_path) == {"bad.md", "new.md"}  # nothing written for the other two
    assert by_path["bad.md"].item_id == "bad.md" and by_path["bad.md"].file_hash == "h2"
    assert by_path["new.md"].first_seen == LONG_AGO and by_path["new.md"].error == "unreadable"
    assert ledger.pending == [] and ledger.removed_items == []


def test_of_two_new_files_claiming_one_id_the_one_seen_first_holds_it() -> None:
    first, second = source("b.md", at=LONG_AGO), source("a.md", at=NOW - timedelta(hours=1))
    todo = plan(found(first, second), {}, Conditions(NOW))
    ledger = ledger_for(todo, {})
    for src in read_order(todo, {}, NOW):
        seen = first_seen(src.mtime_ns, NOW)
        ledger.record(src, None, parsed("same-id", src.path, seen=seen), no_redo)
    ledger.settle_open_ids({}, never_reread)
    assert [i.source_path for i, _ in ledger.pending] == ["b.md"]
    assert ledger.errors == [FileError("a.md", collision_reason("same-id", "b.md"))]
    refused = {f.path: f for f in ledger.latest_files()}["a.md"]
    assert refused.item_id == "same-id" and refused.error is not None


def test_a_moved_file_keeps_its_item_and_its_first_seen_time() -> None:
    old, new = source("old.md"), source("archive/old.md", at=NOW - timedelta(hours=1))
    known = {"old.md": state(old, "story")}
    todo = plan(found(new), known, Conditions(NOW))
    rows = {"old.md": row(old, "story", digest="same-bytes", seen=LONG_AGO)}
    ledger = ledger_for(todo, known, rows)
    asked: list[StoredFile | None] = []

    def redo(src: SourceFile, prev: StoredFile | None, moved: StoredFile | None) -> Outcome:
        asked.append(moved)
        return parsed("story", src.path, digest="same-bytes", seen=LONG_AGO)

    fresh = parsed("story", new.path, digest="same-bytes", seen=NOW - timedelta(hours=1))
    ledger.record(new, None, fresh, redo)
    assert asked == [rows["old.md"]]
    assert ledger.moved_from == {"old.md"} and ledger.held_ids() == ["story"]
    assert ledger.latest_files()[0].first_seen == LONG_AGO
    ledger.depart(departures(todo, rows), known)
    assert ledger.report(ScanReport()).removed == 0  # moved, not removed


def test_a_waiting_file_takes_the_id_its_holder_gave_up() -> None:
    holder, waiter = source("holder.md"), source("waiter.md")
    known = {"holder.md": state(holder, "x", size=99), "waiter.md": state(waiter, "x", "refused")}
    todo = plan(found(holder, waiter), known, Conditions(NOW))
    claimed = stored_claims(known)
    held = holdings(claimed, {"x": "holder.md"})
    rows = {"holder.md": row(holder, "x")}
    ledger = Ledger(todo, start_claims(todo, held, rows), NOW)
    ledger.record(holder, rows["holder.md"], parsed("y", "holder.md"), no_redo)
    assert ledger.removed_items == ["x"]
    reread: list[str] = []

    def again(path: str) -> Candidate | None:
        reread.append(path)
        return waiter, row(waiter, "x", error="refused"), parsed("x", path)

    ledger.settle_open_ids(held.waiting, again)
    ledger.judge_claiming(todo.claiming)
    assert reread == ["waiter.md"]
    assert ledger.removed_items == [] and ledger.errors == []
    assert sorted(i.id for i, _ in ledger.pending) == ["x", "y"]


def test_an_unchanged_refused_file_says_who_holds_its_id_on_every_scan() -> None:
    holder, waiter = source("holder.md"), source("waiter.md")
    known = {"holder.md": state(holder, "x"), "waiter.md": state(waiter, "x", "old words")}
    todo = plan(found(holder, waiter), known, Conditions(NOW))
    held = holdings(stored_claims(known), {"x": "holder.md"})
    ledger = Ledger(todo, start_claims(todo, held, {}), NOW)
    ledger.settle_open_ids(held.waiting, never_reread)  # the id is not open: nobody is read
    ledger.judge_claiming(todo.claiming)
    assert ledger.errors == [FileError("waiter.md", collision_reason("x", "holder.md"))]


def test_every_outcome_survives_the_trip_to_a_pool_process() -> None:
    times = FileTimes(LONG_AGO, NOW)
    cases: list[Outcome] = [
        Vanished(),
        Changing(),
        Same("h"),
        Failed("why"),
        Skipped("why", "h", times),
        Parsed(item("a", "a.md"), "h", times, ("w",)),
    ]
    assert [pickle.loads(pickle.dumps(case)) for case in cases] == cases
