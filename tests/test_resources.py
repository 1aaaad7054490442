"""Documents and resources, and site-generator pages that are not items.

Through the public surface: ``feedsvc scan`` / ``feedsvc check`` output and the
feeds a scan produces. The rule itself (``feedsvc.classify``) is tested on
its list of extensions and on each content sign.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import feedsvc_env

from feedsvc.classify import DEFAULT_RULES, ContentRules, sniff
from feedsvc.errors import ConfigError
from feedsvc.settings import load_settings

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
SVG = b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>\n'
PY = b'def main():\n    print("hello")\n'


def run(tmp_path: Path, content: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", *args],
        env={"PATH": "/usr/bin:/bin", **feedsvc_env(tmp_path, content, **env)},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("post.md", "document"),
        ("POST.MD", "document"),
        ("notes.markdown", "document"),
        ("page.html", "document"),
        ("000_a08af95bc486be6a.txt", "document"),
        ("figure.png", "resource"),
        ("logo.svg", "resource"),
        ("main.py", "resource"),
        ("App.java", "resource"),
        ("x.c", "resource"),
        ("site.css", "resource"),
        ("data.json", "resource"),
        ("_config.yml", "resource"),
        ("feed.xml", "resource"),
        ("paper.pdf", "resource"),
        ("talk.mp4", "resource"),
        ("_content.gotmpl", "resource"),
        ("backup.tar.gz", "resource"),
    ],
)
def test_the_extension_lists_decide_first(name: str, kind: str) -> None:
    # Content that says the opposite does not matter once the extension decides.
    head = PNG if kind == "document" else b"# A heading\n\ntext\n"
    assert DEFAULT_RULES.classify(name, head) == kind


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (PNG, "resource"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "resource"),
        (b"GIF89a\x01\x00", "resource"),
        (b"%PDF-1.7\n", "resource"),
        (b"PK\x03\x04\x14\x00", "resource"),
        (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "resource"),
        (b"\x00\x00\x00\x18ftypmp42", "resource"),
        (SVG, "resource"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "resource"),
        (b"#!/bin/sh\necho hi\n", "resource"),
        (b"text\x00with a NUL", "resource"),
        (b'<?xml version="1.0"?>\n<!DOCTYPE html>\n<html><body>x</body></html>', "document"),
        ("\ufeffUTF-16 text".encode("utf-16"), "document"),
        (b"Just a line of text\n\nand a paragraph.\n", "document"),
        ("---\ntitle: 제목\n---\n본문\n".encode(), "document"),
        (b"date 2024-11-13 [News Today] TITLE\n", "document"),
    ],
)
def test_content_signs_decide_names_the_lists_do_not(head: bytes, kind: str) -> None:
    assert sniff(head) == kind
    assert DEFAULT_RULES.classify("README", head) == kind  # no extension
    assert DEFAULT_RULES.classify("notes.adoc", head) == kind  # in neither list


def test_settings_change_the_rule_and_refuse_bad_extensions(tmp_path: Path) -> None:
    env = feedsvc_env(
        tmp_path,
        tmp_path,
        content_document_extensions=".md, .XML",
        content_resource_extensions=".txt,.xml",
    )
    rules = load_settings(None, environ=env).content.rules
    assert rules == ContentRules(frozenset({".md", ".xml"}), frozenset({".txt", ".xml"}))
    assert rules.by_name("feed.xml") == "document"  # a document extension wins
    assert rules.by_name("a.txt") == "resource"
    assert rules.by_name("a.html") is None  # in neither list now: the bytes decide
    with pytest.raises(ConfigError, match=r"content\.document_extensions"):
        load_settings(
            None,
            environ=feedsvc_env(tmp_path, tmp_path, content_document_extensions="md"),
        )


def test_resources_beside_posts_are_neither_items_nor_failures(tmp_path: Path) -> None:
    content = tmp_path / "content"
    (content / "android").mkdir(parents=True)
    (content / "android" / "_index.md").write_text("---\ntitle: Android\n---\n", "utf-8")
    (content / "android" / "_index.svg").write_bytes(SVG)
    (content / "android" / "intent.py").write_bytes(PY)
    (content / "android" / "big.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4096))
    (content / "android" / "first-app.md").write_text(
        "---\ntitle: Your first app\ndate: 2024-03-01\n---\nHello **Android**.\n", "utf-8"
    )
    (content / "LICENSE").write_bytes(b"#!/usr/bin/env python\nprint(1)\n")  # sniffed
    (content / "notes").write_text("A plain note\n\nwith a paragraph.\n", "utf-8")
    # A video bigger than content.max_file_bytes is still a resource, not "too big".
    env = {"content_max_file_bytes": "2000"}

    check = run(tmp_path, content, "check", **env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.splitlines()[-1] == (
        "7 files, 0 with problems; skipped: 4 resources, 1 not items; 0 missing references"
    )
    assert "android/_index.svg: skipped (resource" in check.stdout
    assert "android/_index.md: skipped (section page" in check.stdout
    assert "ERROR" not in check.stdout

    scan = run(tmp_path, content, "scan", "--strict", **env)
    assert scan.returncode == 0, scan.stdout + scan.stderr
    assert scan.stdout.startswith("2 added, 0 updated, 0 removed, 0 unchanged, 0 failed")
    assert "skipped: 4 resources, 1 not items" in scan.stdout
    again = run(tmp_path, content, "scan", "--strict", **env)
    assert again.stdout.startswith("0 added, 0 updated, 0 removed, 2 unchanged, 0 failed")
    assert "skipped: 4 resources, 1 not items" in again.stdout

    out = tmp_path / "out"
    assert run(tmp_path, content, "build", str(out), **env).returncode == 0
    feed = json.loads((out / "feeds" / "all" / "all.json").read_text("utf-8"))
    assert sorted(item["title"] for item in feed["items"]) == ["A plain note", "Your first app"]


def test_a_page_that_stops_being_an_item_leaves_the_feeds_and_may_come_back(
    tmp_path: Path,
) -> None:
    content = tmp_path / "content"
    content.mkdir()
    (content / "keep.md").write_text("---\ntitle: Keep\ndate: 2024-01-01\n---\nStays.\n", "utf-8")
    page = content / "moved.md"
    page.write_text("---\ntitle: Moved\ndate: 2024-02-01\n---\nA real post.\n", "utf-8")
    out = tmp_path / "out"

    def titles() -> list[str]:
        assert run(tmp_path, content, "build", str(out)).returncode == 0
        feed = json.loads((out / "feeds" / "all" / "all.json").read_text("utf-8"))
        return [item["title"] for item in feed["items"]]

    assert titles() == ["Moved", "Keep"]
    # Turned into a redirect stub: the item goes, the file is skipped, never an error.
    page.write_text("---\ntitle: Moved\naliases: [/old/]\n---\n", "utf-8")
    scan = run(tmp_path, content, "scan", "--strict")
    assert scan.returncode == 0, scan.stdout
    assert scan.stdout.startswith("0 added, 0 updated, 1 removed, 1 unchanged, 0 failed")
    assert "skipped: 0 resources, 1 not items" in scan.stdout
    assert titles() == ["Keep"]
    # Given a body again, it is an item again.
    page.write_text("---\ntitle: Moved\naliases: [/old/]\ndate: 2024-02-01\n---\nBack.\n", "utf-8")
    scan = run(tmp_path, content, "scan", "--strict")
    assert scan.stdout.startswith("1 added, 0 updated, 0 removed, 1 unchanged, 0 failed")
    assert titles() == ["Moved", "Keep"]
