"""Load (issue #6): many pollers on every feed of a real server while files change.

16 pollers x 5 s with conditional GETs and gzip on every feed, while a writer
edits, adds and deletes files and refreshes. Every answer is a complete, valid
document whose ETag belongs to exactly one body across the whole run; no 5xx;
p99 latency bounded (loosely: speed is measured by the benchmarks in bench/).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import threading
import time
from pathlib import Path

import requests
from lxml import etree

TOKEN = "load-token"
POLLERS = 16
ROUNDS = 6  # change-and-refresh rounds while the pollers run


def write(root: Path, i: int, version: int) -> None:
    lang, text = ("ko", "국회가 예산안을 통과시켰다") if i % 3 == 0 else ("en", "The council met")
    (root / f"n{i:03d}.md").write_text(
        f"---\ntitle: Story {i} v{version}\nlang: {lang}\ncategories: [c{i % 4}]\n"
        f"date: 2025-01-{1 + i % 28:02d} 09:00\n---\n{text}, edition {version}.\n",
        encoding="utf-8",
    )


def test_pollers_see_whole_documents_while_files_change(serve, content_dir: Path) -> None:  # noqa: PLR0915 - one load scenario: pollers and writers, then every check
    for i in range(40):
        write(content_dir, i, 0)
    server = serve(content_dir, "--no-watch", server_refresh_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.post(server.url + "/api/refresh", headers=auth, timeout=60).ok
    opml = requests.get(server.url + "/feeds.opml", timeout=30).content
    urls = sorted(
        {
            node.get("xmlUrl").removeprefix("https://news.example.com")
            for node in etree.fromstring(opml).iter("outline")
        }
    )
    paths = sorted({*urls, *(u.rsplit(".", 1)[0] + ".json" for u in urls)})
    assert len(paths) >= 30
    stop = threading.Event()
    lock = threading.Lock()
    bodies: dict[str, str] = {}  # ETag -> digest of the bytes sent with it
    latencies: list[float] = []
    problems: list[str] = []
    counts = {"200": 0, "304": 0, "refresh": 0}

    def check(path: str, response: requests.Response, raw: bytes) -> None:
        etag = response.headers["ETag"]
        digest = hashlib.sha256(raw).hexdigest()
        with lock:
            if bodies.setdefault(etag, digest) != digest:
                problems.append(f"{path}: ETag {etag} sent with two different bodies")
        body = gzip.decompress(raw) if response.headers.get("Content-Encoding") == "gzip" else raw
        if int(response.headers["Content-Length"]) != len(raw):
            problems.append(f"{path}: Content-Length {response.headers['Content-Length']}")
        if path.endswith(".json"):
            json.loads(body)["items"]
        else:
            etree.fromstring(body)

    def poll(seed: int) -> None:
        rng = random.Random(seed)
        session = requests.Session()
        known: dict[tuple[str, bool], str] = {}
        while not stop.is_set():
            path = rng.choice(paths)
            zipped = rng.random() < 0.5
            headers = {"Accept-Encoding": "gzip" if zipped else "identity"}
            if (path, zipped) in known and rng.random() < 0.6:
                headers["If-None-Match"] = known[path, zipped]
            started = time.perf_counter()
            try:
                response = session.get(server.url + path, headers=headers, stream=True, timeout=30)
                raw = response.raw.read(decode_content=False)
            except requests.RequestException as exc:
                with lock:
                    problems.append(f"{path}: {exc!r}")
                continue
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
            try:
                if response.status_code == 304:
                    with lock:
                        counts["304"] += 1
                    if response.headers["ETag"] != headers.get("If-None-Match"):
                        problems.append(f"{path}: 304 with another ETag")
                    continue
                if response.status_code == 404:
                    continue  # a cell emptied by the writer (never happens with these edits)
                if response.status_code != 200:
                    problems.append(f"{path}: {response.status_code}")
                    continue
                with lock:
                    counts["200"] += 1
                check(path, response, raw)
                known[path, zipped] = response.headers["ETag"]
            except Exception as exc:
                with lock:
                    problems.append(f"{path}: {exc!r}")
        session.close()

    def writer() -> None:
        rng = random.Random(99)
        session = requests.Session()
        # A fixed number of change rounds, however slow the machine: the
        # pollers run for exactly as long as the writer needs.
        for version in range(1, ROUNDS + 1):
            for i in rng.sample(range(40), 5):
                write(content_dir, i, version)
            extra = content_dir / f"extra{version % 3}.md"
            if extra.exists():
                extra.unlink()
            else:
                extra.write_text(f"# Extra {version}\n\nbody\n", encoding="utf-8")
            response = session.post(server.url + "/api/refresh", headers=auth, timeout=60)
            if response.status_code != 200:
                problems.append(f"refresh: {response.status_code}")
            counts["refresh"] += 1
        session.close()
        stop.set()

    threads = [threading.Thread(target=poll, args=(n,)) for n in range(POLLERS)]
    threads.append(threading.Thread(target=writer))
    for thread in threads:
        thread.start()
    threads[-1].join(timeout=300)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert not problems, problems[:10]
    assert counts["200"] > 100 and counts["refresh"] == ROUNDS, counts
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"{len(latencies)} feed requests ({counts['200']} x 200, {counts['304']} x 304), "
        f"{counts['refresh']} refreshes, {len(bodies)} ETags, "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms"
    )
    assert p99 < 2.0
    server.stop()
    log = "".join(server.log)
    assert "Traceback" not in log
    assert TOKEN not in log
