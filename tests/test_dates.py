"""Honest dates (docs/dates.md): first seen, updated, guessed dates, unreadable dates.

Through the CLI as an operator runs it (a real clock there, so the times
asserted are file times the test sets itself), and through HTTP with an
injected clock.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from test_cli import run

DAY = 86_400


def _set_mtime(path: Path, when: datetime) -> None:
    os.utime(path, (when.timestamp(), when.timestamp()))


def _json_feed(tmp_path: Path, content: Path) -> dict[str, dict[str, object]]:
    """``feedsvc build`` (a rescan, then the bytes as served) -> JSON Feed items by title."""
    out = tmp_path / "out"
    built = run(tmp_path, content, "build", str(out))
    assert built.returncode == 0, built.stderr
    feed = json.loads((out / "feeds/all/all.json").read_text(encoding="utf-8"))
    return {item["title"]: item for item in feed["items"]}


def test_a_checkout_time_never_becomes_updated_and_an_edit_does(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    post = content / "post.md"
    post.write_text("---\ntitle: Old post\ndate: 2013-05-06\n---\nFirst words.\n", "utf-8")
    # A checkout a week ago: its file time is years after the post's date.
    _set_mtime(post, datetime.now(UTC) - timedelta(days=7))
    items = _json_feed(tmp_path, content)
    assert items["Old post"]["date_published"] == "2013-05-06T00:00:00+09:00"
    assert items["Old post"]["date_modified"] == "2013-05-06T00:00:00+09:00"

    # Touched: same bytes, nothing moves.
    post.touch()
    assert _json_feed(tmp_path, content)["Old post"]["date_modified"] == (
        "2013-05-06T00:00:00+09:00"
    )

    # Really edited: updated is the time of that change (the edit's file time).
    post.write_text("---\ntitle: Old post\ndate: 2013-05-06\n---\nNew words.\n", "utf-8")
    edited = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    _set_mtime(post, edited)
    items = _json_feed(tmp_path, content)
    assert items["Old post"]["date_published"] == "2013-05-06T00:00:00+09:00"
    assert datetime.fromisoformat(str(items["Old post"]["date_modified"])) == edited

    # ... and stays that time on later scans and restamps.
    post.touch()
    modified = _json_feed(tmp_path, content)["Old post"]["date_modified"]
    assert datetime.fromisoformat(str(modified)) == edited


def test_a_future_dated_file_that_fails_first_is_published_when_seen_not_later(
    tmp_path: Path,
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    post = content / "later.md"
    ahead = datetime.now(UTC) + timedelta(days=30)
    post.write_text("---\ntitle: [half written\n---\nBody.\n", "utf-8")
    _set_mtime(post, ahead)
    before = datetime.now(UTC)
    failed = run(tmp_path, content, "scan")
    assert "1 failed" in failed.stdout and "later.md" in failed.stdout

    post.write_text("---\ntitle: Fixed later\n---\nBody.\n", "utf-8")
    _set_mtime(post, ahead)  # the clock skew is still there
    items = _json_feed(tmp_path, content)
    published = datetime.fromisoformat(str(items["Fixed later"]["date_published"]))
    # First seen by the scan that failed: clamped to that scan's time, never 30 days ahead.
    assert before - timedelta(seconds=1) <= published <= datetime.now(UTC)
    assert items["Fixed later"]["date_modified"] == items["Fixed later"]["date_published"]


def test_check_marks_guessed_dates_and_warns_about_unreadable_ones(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "undated.md").write_text("# Undated\n\nNo date anywhere.\n", "utf-8")
    odd = content / "2023-01-29-odd.md"
    odd.write_text(
        "---\ntitle: Odd date\ndate: 2023-01-29 18:30:22 2023 -0800\n---\nBody.\n", "utf-8"
    )
    seen = time.time() - 3 * DAY
    os.utime(content / "undated.md", (seen, seen))
    result = run(tmp_path, content, "check")
    assert result.returncode == 0, result.stdout
    out = result.stdout
    stamp = datetime.fromtimestamp(seen, ZoneInfo("Asia/Seoul")).isoformat()
    assert "undated.md:\n" in out
    assert "(GUESSED from first-seen file time)" in out
    assert "updated:    " in out and "(GUESSED from published)" in out
    assert stamp[:10] in out
    # The odd date is skipped with a warning naming the value; the file name dates it.
    assert "  published:  2023-01-29T00:00:00+09:00 (from file name)\n" in out
    assert (
        "  warning:    front matter 'date': '2023-01-29 18:30:22 2023 -0800' is not a valid"
        " date; published falls back to the file name\n"
    ) in out
