"""Every route revalidates like the feeds: a strong ETag, 304, lists, ``*``, weak tags, HEAD.

The index, the OPML, ``/tags``, item pages, ``/feed.xsl`` and ``/files/...``
answer through the one conditional-GET rule of the feeds (docs/http.md,
"Caching and revalidation"), through Flask's test client.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PICTURE = "img/chart.png"
PAGES = ["/", "/feeds.opml", "/tags", "/feed.xsl", "/files/" + PICTURE]


def _post(content: Path, name: str, title: str, body: str, tags: str = "[]") -> None:
    (content / name).write_text(
        f"---\ntitle: {title}\nlang: en\ndate: 2025-06-01 10:00\ntags: {tags}\n---\n{body}\n",
        encoding="utf-8",
    )


@pytest.fixture
def site(content_dir: Path, make_settings, store_url: str) -> tuple[Flask, Path, object]:
    _post(content_dir, "budget.md", "Budget passes", "The budget passed.", "[economy]")
    (content_dir / "img").mkdir()
    (content_dir / PICTURE).write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    settings = make_settings(content_dir, store_url)
    store = open_store(settings.store.url)
    scanner = Scanner(settings, store, lambda: NOW)
    scanner.run()
    yield create_app(settings, store=store, clock=lambda: NOW), content_dir, scanner
    store.close()


class Client:
    """Flask's test client, closing each answer (a file's answer holds the file open)."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def get(self, path: str, headers: dict[str, str] | None = None) -> TestResponse:
        return self.open(path, "GET", headers)

    def head(self, path: str, headers: dict[str, str] | None = None) -> TestResponse:
        return self.open(path, "HEAD", headers)

    def open(self, path: str, method: str, headers: dict[str, str] | None) -> TestResponse:
        response = self._client.open(path, method=method, headers=headers or {})
        response.get_data()
        response.close()
        return response


@pytest.fixture
def client(site: tuple[Flask, Path, object]) -> Client:
    return Client(site[0].test_client())


def _item_page(client: Client, title: str) -> str:
    items = json.loads(client.get("/feeds/all/all.json").data)["items"]
    return next(urlsplit(item["url"]).path for item in items if item["title"] == title)


def _paths(client: Client) -> list[str]:
    return [*PAGES, _item_page(client, "Budget passes")]


def test_every_page_and_file_has_a_strong_etag_and_answers_304(client: Client) -> None:
    for path in [*_paths(client), "/feeds/all/all.rss"]:  # the feeds' rules, everywhere
        first = client.get(path)
        assert first.status_code == 200, path
        etag = first.headers["ETag"]
        assert etag.startswith('"') and etag.endswith('"'), (path, etag)  # strong
        again = client.get(path)
        assert again.headers["ETag"] == etag and again.data == first.data, path

        matching = [etag, f'"nope", {etag}', f'"a","b",{etag} , "c"', f"W/{etag}", "*"]
        matching.append(f'"a", , {etag}')  # RFC 9110 §5.6.1: empty list elements are fine
        for header in matching:
            answer = client.get(path, headers={"If-None-Match": header})
            assert answer.status_code == 304, (path, header)
            assert answer.data == b""
            assert answer.headers["ETag"] == etag
            assert "Content-Length" not in answer.headers or answer.headers["Content-Length"] == "0"
        # Not a list of entity-tags (unquoted, junk): matches nothing, even beside the tag.
        for header in ['"nope"', etag[1:-1], "W/", ",,,", "", "*, *x", f"{etag}, junk"]:
            answer = client.get(path, headers={"If-None-Match": header})
            assert answer.status_code == 200, (path, header)
            assert answer.data == first.data


def test_head_answers_the_get_headers_without_a_body(client: Client) -> None:
    for path in _paths(client):
        got = client.get(path)
        head = client.head(path)
        assert head.status_code == 200 and head.data == b"", path
        for name in ("ETag", "Content-Type", "Content-Length"):
            assert head.headers.get(name) == got.headers.get(name), (path, name)
        etag = got.headers["ETag"]
        assert client.head(path, headers={"If-None-Match": etag}).status_code == 304


def test_if_none_match_comes_before_if_modified_since(client: Client) -> None:
    """A file has a Last-Modified: a date alone revalidates it, never against a tag."""
    path = "/files/" + PICTURE
    got = client.get(path)
    since = got.headers["Last-Modified"]
    assert client.get(path, headers={"If-Modified-Since": since}).status_code == 304
    mismatch = {"If-None-Match": '"nope"', "If-Modified-Since": since}
    assert client.get(path, headers=mismatch).status_code == 200
    # An empty If-None-Match is still If-None-Match: the date is not looked at.
    assert client.get(path, headers={"If-None-Match": "", "If-Modified-Since": since}).data
    future = format_datetime(datetime(2100, 1, 1, tzinfo=UTC), usegmt=True)
    assert client.get(path, headers={"If-Modified-Since": future}).status_code == 200
    # Pages carry no Last-Modified: a date proves nothing about them.
    assert client.get("/", headers={"If-Modified-Since": since}).status_code == 200


def test_byte_ranges_still_work_after_revalidation(client: Client) -> None:
    path = "/files/" + PICTURE
    full = client.get(path).data
    part = client.get(path, headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.data == full[:10]
    etag = client.get(path).headers["ETag"]
    matched = client.get(path, headers={"Range": "bytes=0-9", "If-None-Match": etag})
    assert matched.status_code == 304


def test_etags_move_when_content_moves_and_only_then(
    site: tuple[Flask, Path, object], client: Client
) -> None:
    _, content, scanner = site
    item = _item_page(client, "Budget passes")
    paths = [*PAGES, item]
    before = {path: client.get(path).headers["ETag"] for path in paths}
    scanner.run()  # nothing changed: nothing moves
    assert {path: client.get(path).headers["ETag"] for path in paths} == before

    _post(content, "rates.md", "Rates rise", "The bank raised rates.", "[banking]")
    scanner.run()
    after = {path: client.get(path).headers["ETag"] for path in paths}
    for path in ("/", "/feeds.opml", "/tags"):
        assert after[path] != before[path], path  # a new item, a new tag feed
    for path in ("/feed.xsl", "/files/" + PICTURE, item):
        assert after[path] == before[path], path
    # The old tag still answers 304 to nobody: the client's copy is stale.
    stale = client.get("/feeds.opml", headers={"If-None-Match": before["/feeds.opml"]})
    assert stale.status_code == 200

    _post(content, "budget.md", "Budget passes", "The budget passed at night.", "[economy]")
    scanner.run()
    assert client.get(item).headers["ETag"] != before[item]

    picture = content / PICTURE
    picture.write_bytes(picture.read_bytes() + b"more")
    os.utime(picture, ns=(1, 1))
    assert client.get("/files/" + PICTURE).headers["ETag"] != before["/files/" + PICTURE]
