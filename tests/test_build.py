"""``feedsvc build`` as an operator uses it: exact, swapped in whole, clear errors."""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import feedparser
import pytest
import requests
from conftest import feedsvc_env

from feedsvc.settings import load_settings
from feedsvc.store import open_store
from feedsvc.web import create_app

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_KO = "000_a08af95bc486be6a"
SAMPLE_EN = "002_ad53fbf95e7bb634"


def build(tmp_path: Path, content: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "feedsvc", "build", str(out)],
        env={**os.environ, **feedsvc_env(tmp_path, content)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tree(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def served(tmp_path: Path, content: Path, paths: list[str]) -> dict[str, tuple[int, bytes]]:
    settings = load_settings(None, environ=feedsvc_env(tmp_path, content))
    store = open_store(settings.store.url)
    try:
        client = create_app(settings, store=store).test_client()
        answers = {}
        for path in paths:
            response = client.get("/" + quote(path) if path != "index.html" else "/")
            answers[path] = (response.status_code, response.get_data())
            response.close()  # a resource is a file the answer holds open
        return answers
    finally:
        store.close()


def test_the_folder_holds_exactly_what_the_service_serves(
    tmp_path: Path, content_dir: Path
) -> None:
    (content_dir / "img").mkdir()
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    (content_dir / "img" / "map of Seoul.png").write_bytes(png)
    out = tmp_path / "public"
    result = build(tmp_path, content_dir, out)
    assert result.returncode == 0, result.stderr
    files = tree(out)
    assert result.stdout.strip() == f"wrote {len(files)} files to {out}"
    # Resources too, where the service serves them; never a document's source.
    assert files["files/img/map of Seoul.png"] == png
    assert not [f for f in files if f.startswith("files/") and f.endswith(".txt")]
    expected = {
        "index.html",
        "feeds.opml",
        "tags",
        "feed.xsl",
        f"items/{SAMPLE_KO}",
        f"items/{SAMPLE_EN}",
        "feeds/all/all.rss",
        "feeds/ko/news.atom",
        "feeds/en/news-today.json",
    }
    assert expected <= set(files), sorted(files)
    # Every feed of the grid, in every format.
    assert {f for f in files if f.startswith("feeds/") and f.count("/") == 2} == {
        f"feeds/{lang}/{cat}.{fmt}"
        for lang, cat in [
            ("all", "all"),
            ("all", "news"),
            ("all", "news-today"),
            ("ko", "all"),
            ("ko", "news"),
            ("en", "all"),
            ("en", "news-today"),
        ]
        for fmt in ("rss", "atom", "json")
    }
    # Byte for byte what the service answers, for every file written.
    for path, (status, body) in served(tmp_path, content_dir, list(files)).items():
        assert status == 200, path
        assert files[path] == body, path
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".public.build-")]


def test_a_rebuild_leaves_nothing_stale(tmp_path: Path, content_dir: Path) -> None:
    out = tmp_path / "public"
    assert build(tmp_path, content_dir, out).returncode == 0
    (out / "feeds" / "leftover.rss").write_text("<rss/>", encoding="utf-8")  # by hand
    (content_dir / f"{SAMPLE_KO}.txt").unlink()  # the only item of "news"
    result = build(tmp_path, content_dir, out)
    assert result.returncode == 0, result.stderr
    files = tree(out)
    assert "feeds/leftover.rss" not in files
    assert f"items/{SAMPLE_KO}" not in files
    # A feed that once existed still answers, as the service does: with no items.
    news = feedparser.parse(files["feeds/all/news.rss"])
    assert news.entries == []
    everything = feedparser.parse(files["feeds/all/all.rss"])
    assert [e.title for e in everything.entries] == ["N. KOREA RATIFIES TREATY WITH RUSSIA"]
    for path, (status, body) in served(tmp_path, content_dir, list(files)).items():
        assert (status, body) == (200, files[path]), path


def test_building_onto_a_file_is_a_clear_error(tmp_path: Path, content_dir: Path) -> None:
    target = tmp_path / "site.txt"
    target.write_text("not a folder", encoding="utf-8")
    result = build(tmp_path, content_dir, target)
    assert result.returncode == 2
    assert result.stderr.strip().endswith(
        f"feedsvc: {target}: exists and is not a folder: name a folder (made if missing)"
    )
    assert "Traceback" not in result.stderr
    assert target.read_text(encoding="utf-8") == "not a folder"


def test_a_reader_during_a_rebuild_never_misses_a_file(tmp_path: Path, content_dir: Path) -> None:
    out = tmp_path / "public"
    assert build(tmp_path, content_dir, out).returncode == 0
    watched = ["index.html", "feeds/all/all.rss", "feeds/en/news-today.json", "feed.xsl"]
    failures: list[str] = []
    reads = [0]
    done = threading.Event()

    def read_all_the_time() -> None:
        while not done.is_set():
            for name in watched:
                try:
                    data = (out / name).read_bytes()
                except OSError as exc:
                    failures.append(f"{name}: {exc}")
                    continue
                if not data.rstrip().endswith((b"</html>", b"</rss>", b"}", b"</xsl:stylesheet>")):
                    failures.append(f"{name}: cut at {len(data)} bytes")
                reads[0] += 1

    reader = threading.Thread(target=read_all_the_time)
    reader.start()
    try:
        for n in range(3):  # each rebuild changes the feeds
            (content_dir / f"note-{n}.md").write_text(
                f"# Note {n}\n\nText {n}.\n", encoding="utf-8"
            )
            result = build(tmp_path, content_dir, out)
            assert result.returncode == 0, result.stderr
    finally:
        done.set()
        reader.join(timeout=60)
    assert reads[0] > 0
    assert failures == []
    assert b"Note 2" in (out / "feeds" / "all" / "all.rss").read_bytes()


def test_nginx_serves_the_build_with_the_headers_of_the_service(  # noqa: PLR0915 - one scenario: build, serve with nginx, compare every header
    tmp_path: Path, content_dir: Path
) -> None:
    """deploy/nginx-static.conf, run by a real nginx over a build, as the docs say."""
    nginx = shutil.which("nginx") or shutil.which("/usr/sbin/nginx")
    if nginx is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but nginx is not installed (.ci/run installs it)")
        pytest.skip("nginx is not installed (CI installs it)")
    out = tmp_path / "public"
    assert build(tmp_path, content_dir, out).returncode == 0
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    work = tmp_path / "nginx"
    work.mkdir()
    site = (ROOT / "deploy" / "nginx-static.conf").read_text(encoding="utf-8")
    for old, new in (
        ("listen 80;", f"listen 127.0.0.1:{port};"),
        ("/srv/feedsvc/public", str(out)),
    ):
        assert old in site
        site = site.replace(old, new)
    (work / "site.conf").write_text(site, encoding="utf-8")
    user = "user root;" if os.geteuid() == 0 else ""
    (work / "nginx.conf").write_text(
        f"daemon off; {user} worker_processes 1; pid {work}/nginx.pid; error_log stderr;\n"
        "events { worker_connections 64; }\n"
        f"http {{ include /etc/nginx/mime.types; access_log off;\n"
        + "".join(f" {kind}_temp_path {work}/{kind};" for kind in TEMP_PATHS)
        + f"\n include {work}/site.conf; }}\n",
        encoding="utf-8",
    )
    proc = subprocess.Popen(
        [nginx, "-e", "stderr", "-p", str(work), "-c", str(work / "nginx.conf")],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "nginx did not start"
                time.sleep(0.05)
        static = f"http://127.0.0.1:{port}"
        settings = load_settings(None, environ=feedsvc_env(tmp_path, content_dir))
        store = open_store(settings.store.url)
        try:
            client = create_app(settings, store=store).test_client()
            for path in PAGES:
                live = client.get(path, headers={"Accept-Encoding": "gzip"})
                got = requests.get(static + path, headers={"Accept-Encoding": "gzip"}, timeout=30)
                assert got.status_code == 200, path
                assert got.content == live.get_data() or got.content == gzip.decompress(
                    live.get_data()
                ), path
                assert got.headers["Content-Type"] == live.headers["Content-Type"], path
                for name in ("Cache-Control", "Access-Control-Allow-Origin"):
                    if name in live.headers:  # feeds and the OPML send them; pages do not
                        assert got.headers[name] == live.headers[name], (path, name)
                assert "Accept-Encoding" in got.headers["Vary"]
                again = requests.get(
                    static + path, headers={"If-None-Match": got.headers["ETag"]}, timeout=30
                )
                assert again.status_code == 304, path
            live.close()
        finally:
            store.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        assert proc.stderr is not None
        proc.stderr.close()


PAGES = ["/", "/feeds/all/all.rss", "/feeds/ko/news.atom", "/feeds/en/news-today.json"]
PAGES += ["/feeds.opml", f"/items/{SAMPLE_EN}"]
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
