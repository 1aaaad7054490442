"""Hugo- and Jekyll-shaped content folders, as they are: check, feeds, and their images.

``tests/data/hugo-site`` (``content/`` is the content root: sections with
``_index.md``, page bundles with their images, a headless bundle, ``_build``
and ``build`` lists, an ``aliases`` stub, SVG, code samples, a content
adapter) and ``tests/data/jekyll-site`` (the site root: ``_posts`` with
file-name dates, ``assets/``, ``_config.yml`` and ``_data``, a
``redirect_to`` stub, Liquid, a date Jekyll accepts that ISO 8601 does not).

Resources are served at ``/files/...``: a bundle's image answers 200 from
the URL found in the feed, through Flask's test client and a real server
(HEAD, Range, If-None-Match); hidden, ignored, document, linked and
outside-root paths answer 404.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
import requests
from conftest import DATA
from flask.testing import FlaskClient
from lxml import html
from test_resources import run

from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

HUGO = DATA / "hugo-site"
JEKYLL = DATA / "jekyll-site"
BASE = "https://news.example.com"
HUGO_SOURCE = "https://hugo.example.org"
NOW = datetime(2030, 1, 1, tzinfo=UTC)

# folder -> (content root inside it, settings, items, drafts, resources, not items)
FOLDERS = {
    "hugo": (HUGO / "content", {"site_source_base_url": HUGO_SOURCE}, 4, 1, 11, 7),
    "jekyll": (JEKYLL, {}, 4, 2, 9, 1),
}
BUNDLE = "posts/bundle-post"
# The one date in the fixtures that is not ISO 8601 (Jekyll reads it): the post
# stays, dated from its file name, with a warning.
ODD_DATE = "2023-01-29 18:30:22 2023 -0800"
DATE_WARNINGS = {
    "hugo": [],
    "jekyll": [f"warning:    front matter 'date': {ODD_DATE!r} is not a valid date"],
}


@pytest.mark.parametrize("name", FOLDERS)
def test_check_passes_on_the_folder_as_it_is(tmp_path: Path, name: str) -> None:
    content, env, items, drafts, resources, skipped = FOLDERS[name]
    result = run(tmp_path, content, "check", **env)
    assert result.returncode == 0, result.stdout + result.stderr
    documents = items + drafts + skipped
    assert result.stdout.splitlines()[-1] == (
        f"{documents + resources} files, 0 with problems; "
        f"skipped: {resources} resources, {skipped} not items; 0 missing references"
    )
    assert "ERROR" not in result.stdout
    warnings = [line.strip() for line in result.stdout.splitlines() if "warning:" in line]
    # Each expected warning starts the line; the rest says which source dates it.
    assert [w[: len(e)] for w, e in zip(warnings, DATE_WARNINGS[name], strict=False)] == (
        DATE_WARNINGS[name]
    )
    assert len(warnings) == len(DATE_WARNINGS[name]), warnings
    assert all("file name" in w for w in warnings)

    scan = run(tmp_path, content, "scan", "--strict", **env)
    assert scan.returncode == 0, scan.stdout + scan.stderr
    assert scan.stdout.startswith(f"{items + drafts} added, 0 updated, 0 removed, 0 unchanged")
    assert f"skipped: {resources} resources, {skipped} not items" in scan.stdout


def test_hugo_conventions_each_keep_a_page_out(tmp_path: Path) -> None:
    result = run(tmp_path, HUGO / "content", "check", site_source_base_url=HUGO_SOURCE)
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": skipped" in line)
    assert lines["_index.md"].startswith("skipped (section page")
    assert lines["posts/_index.md"].startswith("skipped (section page")
    assert lines["snippets/index.md"].startswith("skipped (headless bundle")
    assert (
        lines["posts/sitemap-only.md"] == "skipped (not listed (_build: list: never), not an item)"
    )
    assert lines["posts/local-list.md"] == "skipped (not listed (build: list: local), not an item)"
    assert lines["posts/old-name.md"] == "skipped (redirect stub (aliases, no body), not an item)"
    for resource in ("posts/bundle-post/diagram.svg", "docs/code/example.py", "_content.gotmpl"):
        assert lines[resource].startswith("skipped (resource"), resource


def test_check_names_each_missing_local_reference(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(HUGO / "content", content)
    post = content / "posts" / "first-post.md"
    post.write_text(
        post.read_text("utf-8")
        + "\n![gone](missing.png) ![away](../../outside.png) [doc](nowhere.md)\n"
        + '<img srcset="bundle-post/figure.png 1x, bundle-post/none.png 2x">\n',
        "utf-8",
    )
    (content / "posts" / "bundle-post" / "figure.png").rename(content / "figure.png")
    result = run(tmp_path, content, "check", site_source_base_url=HUGO_SOURCE)
    assert result.returncode == 0, result.stdout  # warnings, not problems
    warnings = [line.strip() for line in result.stdout.splitlines() if "warning:" in line]
    assert warnings == [
        "warning:    'figure.png': posts/bundle-post/figure.png does not exist",
        "warning:    'missing.png': posts/missing.png does not exist",
        "warning:    '../../outside.png' points outside the content folder",
        "warning:    'nowhere.md': posts/nowhere.md does not exist",
        "warning:    'bundle-post/figure.png': posts/bundle-post/figure.png does not exist",
        "warning:    'bundle-post/none.png': posts/bundle-post/none.png does not exist",
    ]
    assert result.stdout.splitlines()[-1].endswith("; 6 missing references")


# --------------------------------------------------------------------------- Flask


class BufferedClient(FlaskClient):
    """Reads (and so closes) every answer: a served file is never left open."""

    def open(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def client_for(settings: Any, store: Any) -> FlaskClient:
    app = create_app(settings, store=store, clock=lambda: NOW)
    app.test_client_class = BufferedClient
    return app.test_client()


@pytest.fixture
def hugo(tmp_path: Path, make_settings) -> Iterator[tuple[Path, FlaskClient]]:
    content = tmp_path / "content"
    shutil.copytree(HUGO / "content", content)
    settings = make_settings(content, site_source_base_url=HUGO_SOURCE)
    store = open_store(settings.store.url)
    report = Scanner(settings, store, lambda: NOW).run()
    assert not report.errors and report.resources == 11 and report.skipped == 7
    yield content, client_for(settings, store)
    store.close()


def _local(url: str) -> str:
    assert url.startswith(BASE + "/"), url
    return url.removeprefix(BASE)


def test_a_bundle_image_answers_from_the_url_in_the_feed(hugo) -> None:
    content, client = hugo
    feed = feedparser.parse(client.get("/feeds/all/all.rss").data)
    assert not feed.bozo, feed.bozo_exception
    titles = [entry.title for entry in feed.entries]
    assert titles == [
        "TOML front matter works too",
        "A page bundle with its own pictures",
        "First post: hello, Hugo",
        "Getting started",
    ]  # no section page, headless bundle, unlisted page, stub, SVG or code sample
    (bundle,) = (e for e in feed.entries if e.title.startswith("A page bundle"))
    body = html.fromstring(bundle.content[0].value)
    sources = body.xpath("//img/@src")
    assert sources[:2] == [
        f"{BASE}/files/{BUNDLE}/figure.png",
        f"{BASE}/files/{BUNDLE}/diagram.svg",
    ]
    assert f"{BASE}/files/images/shared.png" in sources  # ../../images/shared.png
    # feedparser's own sanitiser drops <picture>/<source>: read them from the JSON twin.
    (twin,) = (
        item["content_html"]
        for item in client.get("/feeds/all/all.json").get_json()["items"]
        if item["title"] == bundle.title
    )
    assert html.fromstring(twin).xpath("//source/@srcset") == [
        f"{BASE}/files/{BUNDLE}/gallery/photo.jpg 1x, {BASE}/files/{BUNDLE}/gallery/photo.jpg 2x"
    ]
    links = body.xpath("//a/@href")
    assert (
        f"{BASE}/files/{BUNDLE}/main.go" in links and f"{BASE}/files/{BUNDLE}/slides.pdf" in links
    )
    # The relative `image` front matter: the RSS media element points at the same file.
    assert [m["url"] for m in bundle.media_content] == [f"{BASE}/files/{BUNDLE}/figure.png"]

    for url, name, media_type in (
        (sources[0], "figure.png", "image/png"),
        (sources[1], "diagram.svg", "image/svg+xml"),
        (f"{BASE}/files/{BUNDLE}/gallery/photo.jpg", "gallery/photo.jpg", "image/jpeg"),
        (links[-1], "slides.pdf", "application/pdf"),
    ):
        answer = client.get(_local(url))
        assert answer.status_code == 200, url
        assert answer.mimetype == media_type, url
        assert answer.data == (content / BUNDLE / name).read_bytes()
        assert "sandbox" in answer.headers["Content-Security-Policy"]
    # Root-relative references go to the site the content was written for.
    first = next(e for e in feed.entries if e.title.startswith("First post"))
    assert f"{HUGO_SOURCE}/img/logo.png" in first.content[0].value
    # A link to another document goes to its item, not to its source.
    assert f'href="{BASE}/items/{BUNDLE}/index"' in first.content[0].value


def test_files_are_served_with_validators_ranges_and_head(hugo) -> None:
    content, client = hugo
    path = f"/files/{BUNDLE}/figure.png"
    data = (content / BUNDLE / "figure.png").read_bytes()
    full = client.get(path)
    etag = full.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")  # strong
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["Cache-Control"] == "public, max-age=300"
    assert full.headers["Content-Length"] == str(len(data))
    assert full.headers["Last-Modified"]

    head = client.head(path)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["ETag"] == etag and head.headers["Content-Length"] == str(len(data))

    part = client.get(path, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.data == data[:8] == b"\x89PNG\r\n\x1a\n"
    assert part.headers["Content-Range"] == f"bytes 0-7/{len(data)}"
    tail = client.get(path, headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.data == data[-4:]
    assert client.get(path, headers={"Range": f"bytes={len(data) + 5}-"}).status_code == 416
    stale = client.get(path, headers={"Range": "bytes=0-7", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.data == data

    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    since = full.headers["Last-Modified"]
    assert client.get(path, headers={"If-Modified-Since": since}).status_code == 304
    future = "Wed, 01 Jan 2031 00:00:00 GMT"  # after the answer's own date: proves nothing
    assert client.get(path, headers={"If-Modified-Since": future}).status_code == 200

    # A rewritten file gets a new strong ETag.
    (content / BUNDLE / "figure.png").write_bytes(data + b"\x00")
    assert client.get(path).headers["ETag"] != etag


def test_nothing_but_resources_is_ever_served(hugo, tmp_path: Path) -> None:
    content, client = hugo
    (content / ".secret.png").write_bytes(b"\x89PNG hidden")
    (content / ".git").mkdir()
    (content / ".git" / "config.png").write_bytes(b"\x89PNG hidden")
    (content / "figure.png.tmp").write_bytes(b"\x89PNG ignored")
    (content / "posts" / "photo.png~").write_bytes(b"\x89PNG ignored")
    (tmp_path / "outside.png").write_bytes(b"\x89PNG outside")
    os.symlink(tmp_path / "outside.png", content / "link.png")
    os.symlink(content / "posts", content / "linked-folder")
    os.symlink(tmp_path, content / "up")
    os.mkfifo(content / "pipe.png")
    (content / "notes").write_text("Plain text without an extension.\n", "utf-8")
    (content / "blob").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00binary")
    for path in (
        "/files/.secret.png",
        "/files/.git/config.png",
        "/files/figure.png.tmp",
        "/files/posts/photo.png~",
        "/files/posts/first-post.md",  # a document's source
        "/files/posts/_index.md",
        "/files/notes",  # text without an extension: a document
        "/files/link.png",
        "/files/linked-folder/bundle-post/figure.png",
        "/files/up/outside.png",
        "/files/pipe.png",
        "/files/../outside.png",
        "/files/%2e%2e/outside.png",
        "/files/posts/..%2f..%2foutside.png",
        "/files/posts",
        "/files/posts/",
        "/files/missing.png",
        "/files/posts//bundle-post/figure.png",
        "/files/a%00b.png",
        "/files/",
    ):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert b"PNG" not in answer.data, path
    assert client.get("/files/blob").status_code == 200  # no extension, binary: a resource
    assert client.get(f"/files/{BUNDLE}/main.go").mimetype == "text/x-go"
    assert client.get("/files/docs/code/example.py").mimetype == "text/x-python"


def test_the_jekyll_odd_date_keeps_its_post_and_assets_resolve(tmp_path: Path, make_settings):
    settings = make_settings(JEKYLL)
    store = open_store(settings.store.url)
    try:
        report = Scanner(settings, store, lambda: NOW).run()
        assert not report.errors, report.errors
        client = client_for(settings, store)
        feed = client.get("/feeds/all/all.json").get_json()
    finally:
        store.close()
    items = {item["title"]: item for item in feed["items"]}
    assert set(items) == {
        "서울의 봄, 코드와 산책",
        "Liquid, images and a PDF",
        "A date Jekyll accepts",
        "About",
    }
    # 2023-01-29 18:30:22 2023 -0800: not lost, dated from `2023-01-29-odd-date.md`.
    assert items["A date Jekyll accepts"]["date_published"] == "2023-01-29T00:00:00+09:00"
    # JSON Feed tags carry the categories too: `code`, never the `_posts` folder.
    assert items["Liquid, images and a PDF"]["tags"] == ["code", "jekyll", "liquid"]
    assert items["About"]["tags"] == ["General"]
    assert not any("_posts" in tag for item in feed["items"] for tag in item.get("tags", []))
    liquid = items["Liquid, images and a PDF"]
    assert liquid["image"] == f"{BASE}/files/assets/images/seoul-tower.png"
    assert f'src="{BASE}/files/assets/images/han-river.jpg"' in liquid["content_html"]
    spring = items["서울의 봄, 코드와 산책"]
    assert spring["image"] == f"{BASE}/files/assets/images/han-river.jpg"  # ../assets from _posts


# --------------------------------------------------------------------------- a real server


def test_a_bundle_image_through_a_real_server(tmp_path: Path, serve) -> None:
    content = tmp_path / "content"
    shutil.copytree(HUGO / "content", content)
    server = serve(
        content, "--no-watch", site_source_base_url=HUGO_SOURCE, server_refresh_token="t"
    )
    report = requests.post(
        server.url + "/api/refresh", headers={"Authorization": "Bearer t"}, timeout=120
    ).json()
    assert report["errors"] == [] and report["resources"] == 11 and report["skipped"] == 7
    feed = feedparser.parse(requests.get(server.url + "/feeds/all/all.atom", timeout=30).content)
    assert not feed.bozo
    bundle = next(e for e in feed.entries if e.title.startswith("A page bundle"))
    src = html.fromstring(bundle.content[0].value).xpath("//img/@src")[0]
    url = server.url + urlsplit(src).path
    data = (content / BUNDLE / "figure.png").read_bytes()

    head = requests.head(url, timeout=30)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Type"] == "image/png"
    assert head.headers["Content-Length"] == str(len(data))
    assert head.headers["Accept-Ranges"] == "bytes"
    etag = head.headers["ETag"]

    got = requests.get(url, timeout=30)
    assert got.status_code == 200 and got.content == data and got.headers["ETag"] == etag
    part = requests.get(url, headers={"Range": "bytes=1-3"}, timeout=30)
    assert part.status_code == 206 and part.content == data[1:4]
    assert part.headers["Content-Range"] == f"bytes 1-3/{len(data)}"
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""

    # The item page shows the same image, and it loads from there too.
    page = requests.get(server.url + urlsplit(bundle.link).path, timeout=30)
    assert page.status_code == 200 and src in page.text
    outside = requests.get(server.url + "/files/posts/first-post.md", timeout=30)
    assert outside.status_code == 404


# --------------------------------------------------------------------------- validators, readers

# The checks tests/test_readers.py runs on its own fixture (jing + the RFC 4287 schema,
# the JSON Feed 1.1 schema, RSS 2.0 rules, feedparser, reader, newsboat), collected
# here again so they run on the feeds of both folders, served by a real server.
from test_readers import (  # noqa: E402 - the imported tests run here with the site below
    Site,
    open_site,
    test_atom_is_valid_against_the_rfc4287_relax_ng_schema,  # noqa: F401
    test_atom_rules_the_schema_cannot_express,  # noqa: F401
    test_feedparser_reads_every_feed_the_same,  # noqa: F401
    test_json_feed_is_valid_json_feed_1_1,  # noqa: F401
    test_newsboat_imports_the_opml_and_reloads,  # noqa: F401
    test_newsboat_reads_every_feed,  # noqa: F401
    test_rss_follows_the_rss_2_0_rules,  # noqa: F401
    test_the_reader_library_subscribes_to_every_format,  # noqa: F401
)


@pytest.fixture(scope="module", params=list(FOLDERS))
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    source, env, items, drafts, resources, skipped = FOLDERS[request.param]
    tmp = tmp_path_factory.mktemp(request.param)
    content = tmp / "content"
    shutil.copytree(source, content)
    result = open_site(tmp, content, **env)
    try:
        report = result.report
        assert report["errors"] == [], report
        assert (report["added"], report["resources"], report["skipped"]) == (
            items + drafts,
            resources,
            skipped,
        )
        # Each feed must hold what its JSON twin holds; all/all holds every item.
        counts = {
            (f.language, f.category): len(json.loads(f.body)["items"])
            for f in result.feeds
            if f.fmt == "json"
        }
        assert counts["all", "all"] == items
        assert {f.fmt for f in result.feeds} == {"rss", "atom", "json"}
        for feed in result.feeds:
            feed.expected = counts[feed.language, feed.category]
        yield result
    finally:
        result.server.stop()
