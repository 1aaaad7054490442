"""Attacks on the HTTP surface (issue #6): hostile URLs, headers, methods and tokens.

Most cases run through Flask's test client (fast); the ones the test client
normalises away (raw bytes in the request line, header limits, a 1 MB token,
200 concurrent refreshes across worker processes) run against a real
``feedsvc serve`` with raw sockets. Whatever comes in: never a 5xx, never a
stack trace, absolute path, token or DSN in an answer, and the token never
reaches a log.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import re
import socket
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

TOKEN = "abuse-0123456789abcdef-token"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ITEM = "000_a08af95bc486be6a"
FEEDS = ["/feeds/all/all.rss", "/feeds/all/all.atom", "/feeds/all/all.json"]
ROUTES: dict[str, set[str]] = {
    "/": {"GET", "HEAD", "OPTIONS"},
    "/feeds/all/all.rss": {"GET", "HEAD", "OPTIONS"},
    "/feeds.opml": {"GET", "HEAD", "OPTIONS"},
    f"/items/{ITEM}": {"GET", "HEAD", "OPTIONS"},
    "/api/refresh": {"POST", "OPTIONS"},
    "/api/status": {"GET", "HEAD", "OPTIONS"},
    "/healthz": {"GET", "HEAD", "OPTIONS"},
    "/metrics": {"GET", "HEAD", "OPTIONS"},
}
METHODS = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT",
    "PROPFIND", "MKCOL", "FOO",
]  # fmt: skip

# Hostile values for one URL segment, already in URL (percent-encoded) form.
SEGMENTS = [
    "..",
    "%2e%2e",
    "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
    "..%2f..%2f..%2fetc%2fpasswd",
    "%5c..%5c..%5cwindows",
    "%00",
    "all%00",
    "%0d%0aSet-Cookie:%20x=1",
    "%0a",
    "%ff",
    "%fe%ff",
    "%c0%af",
    "%c0%ae%c0%ae",
    "%e0%80%af",
    "%ed%a0%80",  # a UTF-8-encoded lone surrogate
    "%f4%90%80%80",  # beyond U+10FFFF
    "%e2%80%ae",  # right-to-left override
    "%",
    "%zz",
    "%25",
    "a" * 10_000,
    quote("정치" * 2000),
    "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "'%20OR%201=1--",
    "$%7Bjndi:ldap://x%7D",
    "~root",
    "%20",
    ".",
]
TEMPLATES = [
    "/feeds/{}/all.rss",
    "/feeds/all/{}.rss",
    "/feeds/all/all.{}",
    "/feeds/{}/{}.{}",
    "/feeds/{}",
    "/feeds/all/{}",
    "/items/{}",
    "/items/" + ITEM + "{}",
    "/items/{}/" + ITEM,
    "/{}",
    "/api/{}",
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One scanned SQLite site for the whole module (the test client only reads it)."""
    from conftest import SAMPLE_FRONTMATTER, SAMPLE_TRANSCRIPT, feedsvc_env

    from feedsvc.settings import load_settings

    tmp = tmp_path_factory.mktemp("abuse")
    content = tmp / "content"
    content.mkdir()
    for sample in (SAMPLE_FRONTMATTER, SAMPLE_TRANSCRIPT):
        (content / sample.name).write_bytes(sample.read_bytes())
    env = feedsvc_env(tmp, content, None, server_refresh_token=TOKEN)
    settings = load_settings(None, environ=env)
    store = open_store(settings.store.url)
    Scanner(settings, store, lambda: NOW).run()
    app = create_app(settings, store=store, clock=lambda: NOW)
    yield {"app": app, "tmp": tmp, "store_url": env["FEEDSVC_STORE_URL"]}
    store.close()


@pytest.fixture
def app(site: dict[str, object]) -> Flask:
    found = site["app"]
    assert isinstance(found, Flask)
    return found


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def secrets(site: dict[str, object]) -> list[str]:
    """Text that must never appear in an answer."""
    return [TOKEN, str(site["tmp"]), str(site["store_url"]), "/tmp/", "sqlite:///"]


def assert_safe(response: TestResponse, secrets: list[str]) -> None:
    """No 5xx, and nothing an attacker could learn from the body."""
    assert response.status_code < 500, (response.status_code, response.data[:300])
    body = response.get_data(as_text=False)
    text = body.decode("utf-8", "replace")
    for secret in secrets:
        assert secret not in text
    assert "Traceback" not in text
    assert 'File "' not in text
    if response.status_code >= 400:
        assert "<html" not in text.lower(), text[:300]
        assert len(body) < 2000


def paths() -> list[str]:
    out = []
    for template in TEMPLATES:
        for segment in SEGMENTS:
            out.append(template.format(*([segment] * template.count("{}"))))
    return out


def test_hostile_segments_are_404_or_400_never_500(client: FlaskClient, secrets) -> None:
    for path in paths():
        for method in ("GET", "HEAD"):
            response = client.open(path, method=method)
            assert_safe(response, secrets)
            assert response.status_code in (400, 404), (path[:80], response.status_code)


def test_feeds_and_items_still_answer_next_to_the_hostile_ones(client: FlaskClient) -> None:
    for path in [*FEEDS, f"/items/{ITEM}", "/", "/feeds.opml"]:
        assert client.get(path).status_code == 200


SPOOFS = [
    {"Host": "evil.example"},
    {"Host": "evil.example:666"},
    {"Host": "[::1]"},
    {"Host": "a" * 300},
    {"Host": "news.example.com@evil.example"},
    {"Host": "bad host"},
    {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "gopher"},
    {"X-Forwarded-Prefix": "/evil", "X-Forwarded-Port": "666"},
    {"Forwarded": 'for=1.2.3.4;host="evil.example";proto=http'},
    {"X-Original-URL": "/evil", "X-Rewrite-URL": "/evil"},
]


@pytest.mark.parametrize("path", [*FEEDS, "/", "/feeds.opml", f"/items/{ITEM}"])
def test_host_and_forwarded_spoofing_changes_nothing(client: FlaskClient, path: str) -> None:
    baseline = client.get(path)
    assert baseline.status_code == 200
    for headers in SPOOFS:
        response = client.get(path, headers=headers)
        if headers.get("Host") in ("a" * 300, "bad host") and response.status_code == 400:
            # RFC 9112 §3.2: an invalid Host is a 400 (Werkzeug checks it on Flask routes).
            assert response.content_type.startswith("text/plain")
            continue
        assert response.status_code == 200, headers
        assert response.data == baseline.data, headers
        assert response.headers.get("ETag") == baseline.headers.get("ETag")
        assert b"evil" not in response.data


@pytest.mark.parametrize(
    "since",
    [
        "garbage",
        "",
        "Thu, 32 Jan 2025 99:99:99 GMT",
        "0",
        "-1",
        "Fri, 01 Jan 9999 00:00:00 GMT",  # the future: no proof the client is current
        "Mon, 01 Jan 2100 00:00:00 GMT",
        "Thu, 01 Jan 1970 00:00:00 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "x" * 5000,
        "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT",
    ],
)
def test_bad_old_and_future_if_modified_since_get_the_full_feed(
    client: FlaskClient, since: str
) -> None:
    for path in FEEDS:
        response = client.get(path, headers={"If-Modified-Since": since})
        assert response.status_code == 200
        assert response.data == client.get(path).data


def test_if_none_match_lists_star_and_weak_tags(client: FlaskClient) -> None:
    for path in FEEDS:
        etag = client.get(path).headers["ETag"]
        assert etag.startswith('"')
        matching = [
            etag,
            f'"nope", {etag}',
            f'"a","b",{etag} , "c"',
            f"W/{etag}",  # If-None-Match uses the weak comparison
            f'W/"x", W/{etag}',
            "*",
        ]
        for header in matching:
            response = client.get(path, headers={"If-None-Match": header})
            assert response.status_code == 304, header
            assert response.data == b""
            assert response.headers["ETag"] == etag
        for header in ['"nope"', "garbage", etag[1:-1], "W/", ",,,", '"' * 3, "*, *x", ""]:
            response = client.get(path, headers={"If-None-Match": header})
            assert response.status_code == 200, header
        # If-None-Match takes precedence over a matching If-Modified-Since.
        response = client.get(
            path,
            headers={
                "If-None-Match": '"nope"',
                "If-Modified-Since": "Fri, 01 Jan 2027 00:00:00 GMT",
            },
        )
        assert response.status_code == 200


@pytest.mark.parametrize("path", list(ROUTES))
def test_every_method_on_every_route(client: FlaskClient, path: str, secrets) -> None:
    allowed = ROUTES[path]
    for method in METHODS:
        response = client.open(path, method=method)
        assert_safe(response, secrets)
        if method in allowed:
            if method == "POST":  # /api/refresh without a token
                assert response.status_code == 401
            else:
                assert response.status_code == 200, (method, path)
            if method == "OPTIONS":
                assert set(response.headers["Allow"].replace(" ", "").split(",")) >= allowed
        else:
            assert response.status_code == 405, (method, path, response.status_code)
            assert set(response.headers["Allow"].replace(" ", "").split(",")) == allowed
            assert response.content_type.startswith("text/plain")


@pytest.mark.parametrize(
    "query",
    [
        "?a=%ff",
        "?%00=%00",
        "?" + "x" * 10_000,
        "?a=1&" * 500,
        "?a[]=1&a[]=2&a[b]=3",
        "?callback=alert(1)&format=html&lang=ko",
        "?;;;&&&===",
        "?%",
        "?q=%0d%0aX:%20y",
        "?page=-1&limit=999999999999999999999",
    ],
)
def test_odd_query_strings_change_nothing(client: FlaskClient, query: str, secrets) -> None:
    for path in [*FEEDS, "/", "/feeds.opml", "/api/status", "/healthz", f"/items/{ITEM}"]:
        response = client.get(path + query)
        assert_safe(response, secrets)
        assert response.status_code == 200
        if path in FEEDS:
            assert response.data == client.get(path).data


def test_range_and_accept_encoding_combinations(client: FlaskClient) -> None:
    ranges = [None, "bytes=0-10", "bytes=-5", "bytes=99999999-", "bytes=a-b", "bytes=0-1,2-3", "x"]
    encodings = [
        None,
        "gzip",
        "GZIP",
        "x-gzip",
        "gzip;q=0",
        "gzip;q=abc",
        "*",
        "*;q=0",
        "identity",
        "br",
        "gzip, deflate, br, zstd",
        "identity;q=0",
        ",,;;==",
        "gzip;q=0.001" + ", x" * 500,
    ]
    for path in FEEDS:
        plain = client.get(path)
        for encoding in encodings:
            for byte_range in ranges:
                headers = {}
                if encoding is not None:
                    headers["Accept-Encoding"] = encoding
                if byte_range is not None:
                    headers["Range"] = byte_range
                response = client.get(path, headers=headers)
                assert response.status_code == 200, headers  # Range is ignored: whole feed
                assert "Accept-Encoding" in response.headers["Vary"]
                body = response.data
                if response.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                    assert response.headers["ETag"] != plain.headers["ETag"]
                else:
                    assert "Content-Encoding" not in response.headers
                    assert response.headers["ETag"] == plain.headers["ETag"]
                assert body == plain.data
                assert int(response.headers["Content-Length"]) == len(response.data)


def test_huge_and_numerous_headers_through_the_app(client: FlaskClient, secrets) -> None:
    many = {f"X-Junk-{i}": "v" * 100 for i in range(500)}
    huge = {"X-Huge": "h" * 200_000, "Cookie": "c=" + "x" * 100_000, "Accept": "*/*" * 10_000}
    for headers in (many, huge):
        for path in [*FEEDS, "/", "/api/status", f"/items/{ITEM}"]:
            response = client.get(path, headers=headers)
            assert_safe(response, secrets)
            assert response.status_code == 200


class TestRefreshThroughTheApp:
    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "Bearer",
            "Bearer ",
            "Bearer wrong",
            f"Bearer {TOKEN}x",
            f"Bearer {TOKEN[:-1]}",
            f"Basic {TOKEN}",
            f"Token {TOKEN}",
            f"{TOKEN}",
            "Bearer é",
            "Bearer \u00ff\u00fe",
            "Bearer " + "x" * 100_000,
            f"Bearer  {TOKEN} extra",
        ],
    )
    def test_bad_credentials_are_401(self, client: FlaskClient, header, secrets) -> None:
        headers = {} if header is None else {"Authorization": header}
        response = client.post("/api/refresh", headers=headers)
        assert_safe(response, secrets)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_token_in_the_query_string_or_body_is_refused(self, client: FlaskClient) -> None:
        for response in (
            client.post(f"/api/refresh?token={TOKEN}"),
            client.post(f"/api/refresh?access_token={TOKEN}"),
            client.post("/api/refresh", data={"token": TOKEN}),
            client.post("/api/refresh", json={"token": TOKEN}),
        ):
            assert response.status_code == 401

    def test_get_and_others_are_405(self, client: FlaskClient) -> None:
        for method in ("GET", "HEAD", "PUT", "DELETE"):
            response = client.open(
                "/api/refresh", method=method, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert response.status_code == 405
            assert response.headers["Allow"].replace(" ", "") in ("POST,OPTIONS", "OPTIONS,POST")

    def test_the_scheme_is_case_insensitive_and_a_body_is_capped(self, client: FlaskClient) -> None:
        assert client.post("/api/refresh", headers={"Authorization": f"bearer {TOKEN}"}).json
        response = client.post(
            "/api/refresh", data=b"x" * 100_000, headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code == 413
        assert response.content_type.startswith("text/plain")


# --- a real server ----------------------------------------------------------------------------


def raw_request(port: int, data: bytes, timeout: float = 20) -> bytes:
    """Send bytes as they are, read the whole answer (the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        # Refused mid-upload (an oversized header): read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def status_of(answer: bytes) -> int:
    match = re.match(rb"HTTP/1\.[01] (\d{3}) ", answer)
    assert match, answer[:200]
    return int(match.group(1))


def _req(line: bytes, *headers: bytes, body: bytes = b"") -> bytes:
    head = [line, b"Host: news.example.com", *headers, b"Connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


RAW = {
    "nul in path": _req(b"GET /feeds/all/\x00.rss HTTP/1.1"),
    "raw 0xff in lang": _req(b"GET /feeds/\xff/all.rss HTTP/1.1"),
    "raw 0xff in category": _req(b"GET /feeds/all/\xff\xfe.rss HTTP/1.1"),
    "raw 0xff in format": _req(b"GET /feeds/all/all.\xff HTTP/1.1"),
    "overlong utf-8": _req(b"GET /feeds/\xc0\xae\xc0\xae/all.rss HTTP/1.1"),
    "raw bytes in item id": _req(b"GET /items/\xff\xfe\x00 HTTP/1.1"),
    "utf-8 in path": _req("GET /feeds/all/정치.rss HTTP/1.1".encode()),
    "crlf in request line": _req(b"GET /feeds/all/all.rss\r\nX-Injected: 1 HTTP/1.1"),
    "bare lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "10k request line": _req(b"GET /feeds/" + b"a" * 10_000 + b"/all.rss HTTP/1.1"),
    "10k item id": _req(b"GET /items/" + b"%ff" * 3_400 + b" HTTP/1.1"),
    "9k header": _req(b"GET / HTTP/1.1", b"X-Big: " + b"a" * 9_000),
    "200 headers": _req(b"GET / HTTP/1.1", *(b"X-H%d: v" % i for i in range(200))),
    "1 MB token": _req(
        b"POST /api/refresh HTTP/1.1",
        b"Authorization: Bearer " + b"T" * 1_000_000,
        b"Content-Length: 0",
    ),
    "utf-8 token": _req(
        b"POST /api/refresh HTTP/1.1",
        "Authorization: Bearer é토큰".encode(),
        b"Content-Length: 0",
    ),
    "latin-1 token": _req(
        b"POST /api/refresh HTTP/1.1", b"Authorization: Bearer \xe9\xff", b"Content-Length: 0"
    ),
    "nul in token": _req(
        b"POST /api/refresh HTTP/1.1",
        b"Authorization: Bearer " + TOKEN.encode() + b"\x00x",
        b"Content-Length: 0",
    ),
    "absolute-form": _req(b"GET http://evil.example/feeds/all/all.rss HTTP/1.1"),
    "http/1.0 without host": b"GET /feeds/all/all.rss HTTP/1.0\r\n\r\n",
    "bad content-length": _req(b"POST /api/refresh HTTP/1.1", b"Content-Length: abc"),
    "two content-lengths": _req(
        b"POST /api/refresh HTTP/1.1", b"Content-Length: 1", b"Content-Length: 2", body=b"ab"
    ),
    "bad chunked body": _req(
        b"POST /api/refresh HTTP/1.1", b"Transfer-Encoding: chunked", body=b"zz\r\n"
    ),
    "smuggling": _req(
        b"POST /api/refresh HTTP/1.1",
        b"Content-Length: 4",
        b"Transfer-Encoding: chunked",
        body=b"0\r\n\r\nGET /x HTTP/1.1\r\n\r\n",
    ),
    "nul in method": _req(b"G\x00T / HTTP/1.1"),
    "http/9.9": _req(b"GET / HTTP/9.9"),
    "space in header name": _req(b"GET / HTTP/1.1", b"X Bad: 1"),
    "folded header": _req(b"GET / HTTP/1.1", b"X-A: 1", b"  folded"),
    "tls hello": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n",
    "big body": _req(
        b"POST /api/refresh HTTP/1.1",
        f"Authorization: Bearer {TOKEN}".encode(),
        b"Content-Length: 200000",
        body=b"x" * 200_000,
    ),
}


def test_raw_requests_against_a_real_server(serve, content_dir: Path, tmp_path: Path) -> None:
    server = serve(content_dir, "--no-watch", server_refresh_token=TOKEN)
    requests.post(
        server.url + "/api/refresh", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60
    )
    feed = requests.get(server.url + "/feeds/all/all.rss", timeout=30)
    assert feed.status_code == 200
    secrets = [TOKEN, str(tmp_path), "sqlite:///", "Traceback"]
    for name, data in RAW.items():
        answer = raw_request(server.port, data)
        status = status_of(answer)
        assert status < 500, (name, answer[:300])
        if name == "big body":
            assert status == 413
        elif "token" in name:
            assert status in (400, 401, 431), (name, status)
        text = answer.decode("utf-8", "replace")
        for secret in secrets:
            assert secret not in text, (name, secret)
        # The server is still up and answers the same bytes after each one.
        again = requests.get(server.url + "/feeds/all/all.rss", timeout=30)
        assert (again.status_code, again.content) == (200, feed.content), name
    # Real Host spoofing (the test client builds its own environ).
    for headers in SPOOFS:
        if headers.get("Host", "").startswith(("a" * 10, "bad host")):
            continue  # not valid on the wire; covered by the raw cases
        spoofed = requests.get(server.url + "/feeds/all/all.rss", headers=headers, timeout=30)
        assert spoofed.status_code == 200
        assert spoofed.content == feed.content
        assert spoofed.headers["ETag"] == feed.headers["ETag"]
    server.stop()
    log = "".join(server.log)
    assert TOKEN not in log
    assert "T" * 64 not in log
    assert "토큰" not in log
    assert "Traceback" not in log


def test_200_concurrent_refreshes_share_scans(serve, content_dir: Path, tmp_path: Path) -> None:
    server = serve(content_dir, "--no-watch", server_refresh_token=TOKEN, feeds_max_items="1000")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first = requests.post(server.url + "/api/refresh", headers=auth, timeout=60).json()
    assert first["added"] == 2
    new = 150
    for i in range(new):
        (content_dir / f"burst-{i:03d}.md").write_text(
            f"---\ntitle: Burst {i}\ndate: 2025-01-{1 + i % 28:02d}\n---\nBody {i}.\n",
            encoding="utf-8",
        )
    db = sqlite3.connect(f"file:{tmp_path / 'store.sqlite3'}?mode=ro", uri=True)

    def generation() -> int:
        return int(db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    before = generation()
    start = threading.Barrier(200)
    answers: list[tuple[int, dict]] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def call() -> None:
        try:
            start.wait(timeout=30)
            response = requests.post(server.url + "/api/refresh", headers=auth, timeout=120)
            with lock:
                answers.append((response.status_code, response.json()))
        except BaseException as exc:
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not any(thread.is_alive() for thread in threads), "deadlock: refreshes never returned"
    assert not failures, failures[:3]
    assert len(answers) == 200
    assert {status for status, _ in answers} == {200}
    total = new + 2
    for _, report in answers:
        assert set(report) == {
            "added",
            "updated",
            "removed",
            "unchanged",
            "errors",
            "pending",
            "resources",
            "skipped",
            "warnings",
            "counts",
            "duration_ms",
        }
        assert report["errors"] == [] and report["removed"] == 0 and report["updated"] == 0
        # Either the scan that found the new files, or a later one that found nothing new.
        assert (report["added"], report["unchanged"]) in ((new, 2), (0, total)), report
    assert any(report["added"] == new for _, report in answers)
    # Exactly one scan changed the store; scans never overlapped, in any process.
    assert generation() == before + 1
    events = [
        line
        for line in server.log
        if re.search(r"feedsvc\.pipeline: scan (started|finished)", line)
    ]
    kinds = ["started" if "scan started" in line else "finished" for line in events]
    assert kinds == ["started", "finished"] * (len(kinds) // 2), kinds
    scans = len(kinds) // 2 - 1  # minus the first refresh
    assert 1 <= scans <= 200
    assert sum(f"{new} added" in line for line in events) == 1
    feed = requests.get(server.url + "/feeds/all/all.json", timeout=30).json()
    ids = [item["id"] for item in feed["items"]]
    assert len(ids) == len(set(ids)) == total
    db.close()
    server.stop()
    log = "".join(server.log)
    assert TOKEN not in log
    assert "Traceback" not in log
    print(f"200 concurrent refreshes ran {scans} scan(s), one of which changed the store")


def test_status_answers_json_and_hides_paths(client: FlaskClient, secrets) -> None:
    response = client.get("/api/status")
    assert_safe(response, secrets)
    assert json.loads(response.data)["status"] == "ok"
