"""The scan report a newcomer understands: the same counts in scan, check, refresh and status."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from test_cli import run

from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

TOKEN = "s3cret-token"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

EXPECTED = {
    "documents": 7,  # the two samples, draft, later, gone, odd, broken
    "items": 3,  # the samples and odd
    "drafts": 1,
    "scheduled": 1,
    "expired": 1,
    "not items": 0,
    "pending": 0,
    "resources": 1,  # logo.svg
    "ignored": 2,  # .hidden.md and notes.tmp
    "failed": 1,  # broken.md
    "warnings": 1,  # odd date
}


def _folder(content: Path) -> None:
    files = {
        "draft.md": "---\ntitle: Draft\ndraft: true\n---\nNot yet.\n",
        "later.md": "---\ntitle: Later\ndate: 2999-01-01\n---\nMuch later.\n",
        "gone.md": "---\ntitle: Gone\ndate: 2020-01-01\nexpiryDate: 2021-01-01\n---\nOld.\n",
        "2023-01-29-odd.md": (
            "---\ntitle: Odd\ndate: 2023-01-29 18:30:22 2023 -0800\n---\nOdd date.\n"
        ),
        "broken.md": "---\ntitle: [unclosed\n---\nBody.\n",
        "logo.svg": '<svg xmlns="http://www.w3.org/2000/svg"/>\n',
        ".hidden.md": "# Hidden\n",
        "notes.tmp": "scratch\n",
    }
    for name, text in files.items():
        (content / name).write_text(text, encoding="utf-8")
    old = (NOW - timedelta(days=1)).timestamp()
    for path in content.iterdir():
        os.utime(path, (old, old))


def _count_lines(stdout: str) -> dict[str, int]:
    counts = {}
    for line in stdout.splitlines():
        parts = line.split("  ")
        words = [p.strip() for p in parts if p.strip()]
        if line.startswith("  ") and len(words) >= 2 and words[1].isdigit():
            counts[words[0]] = int(words[1])
    return counts


def test_scan_and_check_print_every_count_then_each_problem(
    tmp_path: Path, content_dir: Path
) -> None:
    _folder(content_dir)
    scanned = run(tmp_path, content_dir, "scan", content_ignore='["*.tmp"]')
    assert scanned.returncode == 0, scanned.stderr
    out = scanned.stdout
    assert _count_lines(out) == EXPECTED
    assert "  resources  1  images, code, data: served, never items\n" in out
    assert "  broken.md: bad YAML front matter" in out
    assert (
        "  2023-01-29-odd.md: warning: front matter 'date': '2023-01-29 18:30:22 2023 -0800'"
        " is not a valid date; published falls back to the file name\n"
    ) in out

    checked = run(tmp_path, content_dir, "check", content_ignore='["*.tmp"]')
    assert checked.returncode == 1  # broken.md
    assert _count_lines(checked.stdout) == EXPECTED


def test_refresh_and_status_carry_the_same_counts(content_dir: Path, make_settings, store_url):
    _folder(content_dir)
    settings = make_settings(
        content_dir, store_url, server_refresh_token=TOKEN, content_ignore='["*.tmp"]'
    )
    store = open_store(settings.store.url)
    try:
        client = create_app(settings, store=store, clock=lambda: NOW).test_client()
        response = client.post("/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"})
        body = response.get_json()
        # docs/api.md's keys stay as they were.
        assert body["added"] == 6 and body["removed"] == 0 and body["unchanged"] == 0
        assert [e["path"] for e in body["errors"]] == ["broken.md"]
        assert isinstance(body["duration_ms"], int)
        expected = {name.replace(" ", "_"): n for name, n in EXPECTED.items()}
        assert body["counts"] == expected
        assert [w["path"] for w in body["warnings"]] == ["2023-01-29-odd.md"]
        status = client.get("/api/status").get_json()
        assert status["last_scan"]["counts"] == expected
        assert status["items"] == 3
        assert [w["path"] for w in status["warnings"]] == ["2023-01-29-odd.md"]
        assert [e["path"] for e in status["errors"]] == ["broken.md"]
        # A second scan reads nothing again, and still says the same.
        Scanner(settings, store, lambda: NOW).run()
        again = client.get("/api/status").get_json()
        assert again["last_scan"]["counts"] == expected
        assert [w["path"] for w in again["warnings"]] == ["2023-01-29-odd.md"]
    finally:
        store.close()
