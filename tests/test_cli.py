"""The `feedsvc` command as an operator runs it: scan, check, feeds, build."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import feedsvc_env

ROOT = Path(__file__).resolve().parents[1]


def run(
    tmp_path: Path, content: Path, *args: str, store: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, **feedsvc_env(tmp_path, content, store, **env)}
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args],
        env=environ,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def dump(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        rows = []
        for table in ("files", "items", "item_categories"):
            rows += [(table, *row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2")]
        return rows


def test_scan_twice_reports_and_writes_nothing_the_second_time(
    tmp_path: Path, content_dir: Path
) -> None:
    first = run(tmp_path, content_dir, "scan")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith(
        "2 added, 0 updated, 0 removed, 0 unchanged, 0 failed"
    )
    db = tmp_path / "store.sqlite3"
    before = dump(db)
    generation = (
        sqlite3.connect(db).execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    )
    second = run(tmp_path, content_dir, "scan")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[0].startswith(
        "0 added, 0 updated, 0 removed, 2 unchanged, 0 failed"
    )
    assert dump(db) == before
    after = sqlite3.connect(db).execute("SELECT value FROM meta WHERE key='generation'").fetchone()
    assert after == generation


def test_scan_reports_bad_files_and_strict_fails(tmp_path: Path, content_dir: Path) -> None:
    (content_dir / "bad.md").write_text("---\ntitle: [unclosed\n---\nbody\n", encoding="utf-8")
    # Binary bytes in a document (a .txt) fail; the same bytes in an image are a resource.
    (content_dir / "blob.txt").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    )
    (content_dir / "figure.png").write_bytes(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    )
    result = run(tmp_path, content_dir, "scan")
    assert result.returncode == 0
    assert "2 added" in result.stdout and "2 failed" in result.stdout
    assert "skipped: 1 resources" in result.stdout
    assert "  bad.md: " in result.stdout and "YAML" in result.stdout
    assert "  blob.txt: " in result.stdout and "binary" in result.stdout
    assert "figure.png" not in result.stdout
    strict = run(tmp_path, content_dir, "scan", "--strict")
    assert strict.returncode == 1
    assert "bad.md" in strict.stdout  # unchanged bad files are still reported


def test_missing_content_folder_is_an_error_and_deletes_nothing(
    tmp_path: Path, content_dir: Path
) -> None:
    assert run(tmp_path, content_dir, "scan").returncode == 0
    before = dump(tmp_path / "store.sqlite3")
    result = run(tmp_path, tmp_path / "nowhere", "scan")
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr
    assert dump(tmp_path / "store.sqlite3") == before


def test_feeds_lists_every_feed_url_with_counts(tmp_path: Path, content_dir: Path) -> None:
    run(tmp_path, content_dir, "scan")
    result = run(tmp_path, content_dir, "feeds")
    lines = dict(line.split("\t") for line in result.stdout.splitlines())
    assert lines["https://news.example.com/feeds/all/all.rss"] == "2"
    assert lines["https://news.example.com/feeds/en/news-today.json"] == "1"
    assert lines["https://news.example.com/feeds/ko/news.atom"] == "1"
    assert (
        len(lines) == 3 * 7
    )  # all/all, all/news, all/news-today, ko/all, ko/news, en/all, en/news-today


def test_build_writes_the_bytes_the_server_serves(tmp_path: Path, content_dir: Path) -> None:
    out = tmp_path / "site"
    result = run(tmp_path, content_dir, "build", str(out))
    assert result.returncode == 0, result.stderr
    assert (out / "index.html").read_text(encoding="utf-8").startswith("<!doctype html>")
    assert (out / "feeds.opml").exists()
    from feedsvc.settings import load_settings
    from feedsvc.store import open_store
    from feedsvc.web import create_app

    settings = load_settings(None, environ=feedsvc_env(tmp_path, content_dir))
    store = open_store(settings.store.url)
    client = create_app(settings, store=store).test_client()
    for path in ("feeds/all/all.rss", "feeds/en/news-today.json", "feeds/ko/all.atom"):
        assert (out / path).read_bytes() == client.get("/" + path).data
    store.close()


@pytest.mark.parametrize("command", ["serve", "watch", "scan", "check", "build", "feeds"])
def test_every_command_has_help(command: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "feedsvc", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert "--config" in result.stdout
