"""Ids that always make a working page, and dates out of range (issue #13, points 7 and 8).

Every id shape of the hostile suites (``test_abuse.SEGMENTS``, decoded as an
author would type it) and the shapes that broke item pages (a newline, ``/``,
``../../x``) are written into files, scanned by a real ``feedsvc serve`` and
then each file is either a clear per-file error about its id, or an item
whose ``url`` answers 200 with that item, through a real HTTP client that sends
the path exactly as a browser would after resolving it.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import requests
from conftest import feedsvc_env
from test_abuse import SEGMENTS

from feedsvc.errors import SourceError
from feedsvc.normalise.ids import MAX_ID_CHARS, checked_id

TOKEN = "ids-refresh-token-3141"

# The shapes the attack report found broken, and their neighbours.
SHAPES = [
    "line\nbreak",
    "carriage\rreturn",
    "tab\there",
    "/",
    "//",
    "a//b",
    "trailing/",
    "/leading",
    "../../x",
    "./x",
    "x/..",
    "x/./y",
    "%2E%2E/x",
    "  padded  ",
    "cafe\u0301",  # NFD: the same id as "café" once NFC-normalised
    "sep\u2028line",
    "nul\x00byte",
    "del\x7fchar",
    "bell\x07",
    "a?b#c",
    "back\\slash",
    "semi;colon",
    "100%",
    "뉴스/2024/첫 기사",
    "https://example.com/story/1",
    "tag:example.com,2024:a/b",
    "urn:uuid:0b8f6f3c-4d0e-4e43-9a4b-6d1c1b9d7a11",
    "x" * (MAX_ID_CHARS + 1),
]
# The broken shapes must be refused (main published them with URLs that do not open).
REFUSED = ["line\nbreak", "/", "//", "a//b", "trailing/", "/leading", "../../x", "x/..", "./x"]
# File names whose path-made id is refused.
BAD_NAMES = ["new\nline.md", "ret\rurn.md"]


def _id_values() -> list[str]:
    values = [unquote(segment, errors="replace") for segment in SEGMENTS] + SHAPES
    return list(dict.fromkeys(values))


def _browser_path(url: str) -> str:
    """The request target a browser sends for ``url``: dot segments resolved,
    ``%2E`` counted as ``.`` (WHATWG URL), so an id must not depend on them."""
    path = urlsplit(url).path
    out: list[str] = []
    for segment in path.split("/")[1:]:
        if unquote(segment) in (".", ".."):
            if unquote(segment) == ".." and out:
                out.pop()
            continue
        out.append(segment)
    return "/" + "/".join(out)


def _get(port: int, target: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.putrequest("GET", target, skip_accept_encoding=True)
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_every_hostile_id_is_refused_or_opens_its_page(serve, tmp_path: Path) -> None:
    content = tmp_path / "content"
    content.mkdir()
    titles: dict[str, str] = {}
    declared: dict[str, str] = {}
    for n, value in enumerate(_id_values()):
        name = f"id{n:03d}.md"
        title = f"Id shape {n}"
        body = f"---\ntitle: {title}\nid: {json.dumps(value)}\ndate: 2025-01-01\n---\nBody {n}.\n"
        (content / name).write_text(body, encoding="utf-8")
        titles[name], declared[name] = title, value
    for n, name in enumerate(BAD_NAMES):
        (content / name).write_text(f"# Bad name {n}\n\nBody.\n", encoding="utf-8")
        titles[name] = f"Bad name {n}"
    server = serve(content, server_refresh_token=TOKEN, feeds_max_items="1000")
    report = requests.post(
        server.url + "/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120
    ).json()
    errors = {e["path"]: e["error"] for e in report["errors"]}
    feed = requests.get(server.url + "/feeds/all/all.json", timeout=30).json()
    items = {item["title"]: item for item in feed["items"]}
    for name, title in titles.items():
        shown = repr(declared.get(name, name))
        if name in errors:
            assert title not in items, (name, shown)
            assert "id" in errors[name], (shown, errors[name])
            continue
        assert title in items, (shown, "neither refused nor published", errors)
        url = items[title]["url"]
        target = _browser_path(url)
        assert target == urlsplit(url).path, (shown, url, "a browser rewrites this URL")
        status, page = _get(server.port, target)
        assert status == 200, (shown, url, status)
        assert title in page, (shown, url)
    for value in REFUSED:
        name = next(n for n, v in declared.items() if v == value)
        assert name in errors, (value, "must be refused")
    for name in BAD_NAMES:
        assert "control character" in errors[name], errors[name]
        assert "rename the file" in errors[name]
    # NFC: the decomposed "café" is stored as the composed one and answers there.
    nfd = next(n for n, v in declared.items() if v == "cafe\u0301")
    assert items[titles[nfd]]["url"].endswith("/items/caf%C3%A9")


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("  spaced  ", "spaced"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9"),
        ("news/2024/a", "news/2024/a"),
        ("https://example.com/a", "https://example.com/a"),
    ],
)
def test_ids_are_nfc_and_stripped(value: str, canonical: str) -> None:
    assert checked_id("a.md", value, "the front matter") == canonical
    assert unicodedata.is_normalized("NFC", checked_id("a.md", value, "the front matter"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "is empty"),
        ("a\nb", "control character (U+000A)"),
        ("a\u2029b", "control character (U+2029)"),
        ("/", "an empty path segment"),
        ("a//b", "an empty path segment"),
        ("../../x", "a '..' path segment"),
        ("x/.", "a '.' path segment"),
        ("https:///x", "an empty path segment"),
    ],
)
def test_refused_ids_say_why(value: str, reason: str) -> None:
    with pytest.raises(SourceError) as info:
        checked_id("n/a.md", value, "the front matter")
    assert info.value.path == "n/a.md"
    assert reason in info.value.reason
    assert "set another id" in info.value.reason


def test_a_date_out_of_range_says_so(tmp_path: Path, content_dir: Path) -> None:
    for name, value in [("late", "9999-12-31T23:59:59Z"), ("early", "0001-01-01T00:00:00+09:00")]:
        (content_dir / f"{name}.md").write_text(
            f"---\ntitle: {name}\ndate: {value}\n---\nbody\n", encoding="utf-8"
        )
    (content_dir / "far.md").write_text("---\ntitle: far\ndate: 12024-01-01\n---\nb\n", "utf-8")
    (content_dir / "bad.md").write_text("---\ntitle: bad\ndate: 2024-13-45\n---\nb\n", "utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "feedsvc", "scan"],
        env={**os.environ, **feedsvc_env(tmp_path, content_dir)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # docs/dates.md: an unreadable date is a warning, and the item is dated by the next source.
    assert "6 added" in done.stdout and "0 failed" in done.stdout, done.stdout
    lines = {line.split(":", 1)[0].strip(): line for line in done.stdout.splitlines()}
    for name in ("late.md", "early.md", "far.md"):
        assert "warning: " in lines[name] and "out of range" in lines[name], done.stdout
        assert "not a valid date" not in lines[name]
    assert "not a valid date" in lines["bad.md"], done.stdout
