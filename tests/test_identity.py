"""Ids are unique and no post is lost (docs/identity.md), through HTTP and the CLI.

Each sequence runs on SQLite and PostgreSQL: files change on disk, then
``POST /api/refresh`` scans (with an injected clock), and the feeds and
``/api/status`` show what a subscriber and an operator would see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_cli import run

from feedsvc.store import open_store
from feedsvc.web import create_app

TOKEN = "s3cret-token"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


class Site:
    """A content folder, a store, an app with a clock the test moves."""

    def __init__(self, root: Path, make_settings, store_url: str) -> None:
        self.root = root
        self.now = T0
        settings = make_settings(
            root, store_url, server_refresh_token=TOKEN, content_settle_seconds="0"
        )
        self.store = open_store(settings.store.url)
        self.client = create_app(settings, store=self.store, clock=lambda: self.now).test_client()

    def write(self, name: str, text: str, *, at: datetime) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        os.utime(path, (at.timestamp(), at.timestamp()))
        return path

    def refresh(self) -> dict:
        self.now += timedelta(minutes=5)
        response = self.client.post("/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    def items(self) -> dict[str, dict]:
        """The JSON Feed of every item, by id (the part after the tag prefix)."""
        feed = self.client.get("/feeds/all/all.json")
        if feed.status_code == 404:
            return {}
        return {item["id"].rsplit(":", 1)[1]: item for item in feed.get_json()["items"]}

    def status_errors(self) -> dict[str, str]:
        return {e["path"]: e["error"] for e in self.client.get("/api/status").get_json()["errors"]}


@pytest.fixture
def site(tmp_path: Path, make_settings, store_url: str) -> Iterator[Site]:
    root = tmp_path / "content"
    root.mkdir()
    made = Site(root, make_settings, store_url)
    yield made
    made.store.close()


def story(title: str, extra: str = "") -> str:
    return f"---\nid: story-42\ntitle: {title}\nlang: en\n{extra}---\n{title} body text.\n"


def test_two_new_claimants_in_one_scan_then_the_holder_deleted(site: Site) -> None:
    # Two new files claim one id in the same scan: the one first seen (older file time) holds it.
    site.write("a.md", story("From A"), at=T0 - timedelta(hours=1))
    site.write("b.md", story("From B"), at=T0 - timedelta(hours=2))
    report = site.refresh()
    assert report["added"] == 1
    assert [e["path"] for e in report["errors"]] == ["a.md"]
    error = report["errors"][0]["error"]
    assert "'story-42'" in error and "b.md" in error  # names both: a.md is its path
    assert site.items()["story-42"]["title"] == "From B"

    # Reported again on every scan, and in /api/status, with nothing touched.
    again = site.refresh()
    assert (again["added"], again["unchanged"]) == (0, 1)  # the refused file is no item
    assert [e["path"] for e in again["errors"]] == ["a.md"] and "b.md" in again["errors"][0][
        "error"
    ]
    assert "b.md" in site.status_errors()["a.md"]

    # The holder goes: the claimant is indexed by the next scan, without any touch.
    (site.root / "b.md").unlink()
    after = site.refresh()
    assert after["errors"] == []
    assert (after["added"], after["removed"], after["unchanged"]) == (1, 1, 0)
    assert site.items()["story-42"]["title"] == "From A"
    assert site.status_errors() == {}
    assert site.refresh()["errors"] == []  # and it stays so


def test_a_move_with_an_explicit_id_keeps_its_item_and_its_dates(site: Site) -> None:
    site.write("a.md", story("Story"), at=T0 - timedelta(days=3))  # no date: first seen
    assert site.refresh()["added"] == 1
    before = site.items()["story-42"]

    (site.root / "archive" / "2024").mkdir(parents=True)
    os.rename(site.root / "a.md", site.root / "archive" / "2024" / "a.md")
    report = site.refresh()
    assert report["errors"] == []
    assert (report["added"], report["removed"]) == (0, 0)
    moved = site.items()["story-42"]
    assert moved["date_published"] == before["date_published"]
    assert moved["date_modified"] == before["date_modified"]
    assert moved["title"] == "Story"
    assert site.refresh()["errors"] == []  # no false error, ever


def test_a_moved_holder_keeps_its_id_over_a_waiting_claimant(site: Site) -> None:
    site.write("a.md", story("Holder"), at=T0 - timedelta(days=2))
    site.write("b.md", story("Claimant"), at=T0 - timedelta(days=1))
    assert [e["path"] for e in site.refresh()["errors"]] == ["b.md"]
    os.rename(site.root / "a.md", site.root / "moved.md")
    report = site.refresh()
    assert site.items()["story-42"]["title"] == "Holder"
    assert [e["path"] for e in report["errors"]] == ["b.md"]
    assert "moved.md" in report["errors"][0]["error"]  # the holder's name now


def test_the_holder_changing_its_id_lets_the_claimant_in(site: Site) -> None:
    site.write("a.md", story("Holder"), at=T0 - timedelta(days=2))
    site.write("b.md", story("Claimant"), at=T0 - timedelta(days=1))
    site.refresh()
    site.write("a.md", story("Holder").replace("story-42", "story-43"), at=T0)
    report = site.refresh()
    assert report["errors"] == []
    items = site.items()
    assert items["story-42"]["title"] == "Claimant"
    assert items["story-43"]["title"] == "Holder"


def test_x_md_beside_x_txt_share_a_path_id_and_one_is_refused(site: Site) -> None:
    same = T0 - timedelta(hours=1)
    site.write("x.md", "# Markdown x\n\nThe Markdown one.\n", at=same)
    site.write("x.txt", "Plain x\n\nThe text one.\n", at=same)
    report = site.refresh()
    assert report["added"] == 1
    # Seen at the same time: the smaller path holds the id.
    assert site.items()["x"]["title"] == "Markdown x"
    assert [e["path"] for e in report["errors"]] == ["x.txt"]
    assert "'x'" in report["errors"][0]["error"] and "x.md" in report["errors"][0]["error"]
    (site.root / "x.md").unlink()
    assert site.refresh()["errors"] == []
    assert site.items()["x"]["title"] == "Plain x"


def test_check_and_scan_report_a_collision_naming_both_files(tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "a.md").write_text(story("From A"), encoding="utf-8")
    (content / "b.md").write_text(story("From B"), encoding="utf-8")
    old = (T0 - timedelta(days=1)).timestamp()
    os.utime(content / "a.md", (old, old))
    checked = run(tmp_path, content, "check", content_settle_seconds="0")
    assert checked.returncode == 1
    assert "b.md: ERROR id 'story-42' is also claimed by a.md, which holds it" in checked.stdout
    scanned = run(tmp_path, content, "scan", "--strict", content_settle_seconds="0")
    assert scanned.returncode == 1
    assert "  b.md: id 'story-42' is also claimed by a.md" in scanned.stdout
