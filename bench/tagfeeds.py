"""Tag feeds at scale: ``python -m bench.tagfeeds [--items 50000] [--tags 5000]``.

A store of ``--items`` items, each with three of ``--tags`` tags (Zipf-like:
a few tags are on many items, most on a few) and one of 200 authors, in two
languages. Requests go through the app's WSGI stack in this process (the
feed fast path, as a worker serves them). Measured, with the grid's
``/feeds/all/all.rss`` as the peer in the same run:

- start-up: the app's first request (reads the grid; tag feeds are not read);
- first request of a tag feed (query + render + gzip) and of the peer;
- cached requests of both (a lookup);
- memory: the process's RSS and the tag-feed cache's bytes after first
  requests of ``--sample`` tag feeds in the three formats, against
  ``feeds.term_cache_bytes``.

Writes nothing but the store under ``bench/work/``; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import shutil
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

HERE = Path(__file__).parent
WORK = HERE / "work" / "tagfeeds"


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _items(n: int, tags: int, seed: int, *, terms: bool = True) -> list[object]:
    from feedsvc.types import Category, Item

    rng = random.Random(seed)
    names = [f"topic {i:04d}" for i in range(tags)]
    weights = [1 / (i + 1) ** 0.8 for i in range(tags)]  # Zipf-like, not too steep
    authors = [f"Reporter {i:03d}" for i in range(200)]
    start = datetime(2023, 1, 1, tzinfo=UTC)
    body = "<p>" + "Markets rallied as the central bank held rates. " * 30 + "</p>"
    out: list[object] = []
    for i in range(n):
        chosen = list(dict.fromkeys(rng.choices(names, weights, k=3)))
        lang = "ko" if i % 2 else "en"
        published = start + timedelta(minutes=17 * i)
        item_id = f"bench/{i:06d}"
        digest = hashlib.sha256(f"{item_id}{chosen}".encode()).hexdigest()
        out.append(
            Item(
                id=item_id,
                guid=f"tag:news.example.com,2024:{item_id}",
                source_path=f"{item_id}.md",
                url=f"https://news.example.com/items/{item_id}",
                title=f"Item {i} on {chosen[0]}",
                summary="Markets rallied as the central bank held rates.",
                content_html=body,
                content_text=body[3:-4],
                language=lang,
                categories=(Category(name="News", slug="news"),),
                tags=tuple(chosen) if terms else (),
                image=None,
                authors=(rng.choice(authors),) if terms else (),
                published=published,
                updated=published,
                content_hash=digest,
            )
        )
    return out


def _fill(db: Path, items: list[object]) -> float:
    from feedsvc.store import ScanChanges, open_store

    store = open_store(f"sqlite:///{db}")
    began = time.perf_counter()
    with store.scan_writer() as writer:
        for start in range(0, len(items), 1000):
            writer.stage((), items[start : start + 1000])  # type: ignore[arg-type]
        writer.commit(ScanChanges())
    store.close()
    return time.perf_counter() - began


def _fill_new(db: Path, n: int, tags: int, seed: int, terms: bool) -> float:
    return _fill(db, _items(n, tags, seed, terms=terms))


def _ms(seconds: list[float]) -> str:
    return f"{statistics.median(seconds) * 1000:.2f} ms"


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 - the benchmark's steps in the order its report prints them
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--tags", type=int, default=5_000)
    parser.add_argument("--sample", type=int, default=300, help="tag feeds requested")
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args(argv)

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    db, bare = WORK / "store.sqlite3", WORK / "bare.sqlite3"
    # Filled in another process, so this one's memory holds only what serving needs.
    # The start-up peer ("bare"): the same items without tags or authors.
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        fill_s = pool.apply(_fill_new, (db, args.items, args.tags, args.seed, True))
        bare_fill_s = pool.apply(_fill_new, (bare, args.items, args.tags, args.seed, False))

    os.environ.update(
        {
            "FEEDSVC_STORE_URL": f"sqlite:///{db}",
            "FEEDSVC_CONTENT_PATH": str(WORK),
            "FEEDSVC_SITE_BASE_URL": "https://news.example.com",
        }
    )
    from feedsvc.settings import load_settings
    from feedsvc.store import open_store
    from feedsvc.web import create_app

    def start(url: str) -> float:
        peer_store = open_store(url)
        t = time.perf_counter()
        peer = create_app(load_settings(), store=peer_store).test_client()
        assert peer.get("/feeds/all/all.rss").status_code == 200
        took = time.perf_counter() - t
        peer_store.close()
        return took

    start(f"sqlite:///{bare}")  # imports, template compilation: paid once by either
    bare_runs, tagged_runs = [], []
    for _ in range(3):  # interleaved, so neither gets a warmer machine
        bare_runs.append(start(f"sqlite:///{bare}"))
        tagged_runs.append(start(f"sqlite:///{db}"))
    bare_startup_s = statistics.median(bare_runs)
    tagged_startup_s = statistics.median(tagged_runs)
    settings = load_settings()
    store = open_store(settings.store.url)
    rss_before = _rss_mb()
    began = time.perf_counter()
    client = create_app(settings, store=store).test_client()
    assert client.get("/feeds/all/all.rss").status_code == 200
    startup_s = time.perf_counter() - began
    rss_started = _rss_mb()
    services = client.application.extensions["feedsvc"]

    def timed(path: str) -> float:
        t = time.perf_counter()
        response = client.get(path, headers={"Accept-Encoding": "gzip"})
        took = time.perf_counter() - t
        assert response.status_code == 200, path
        return took

    # The peer: grid feeds of the same size, first (render) and cached.
    grid = [
        f"/feeds/{lang}/{cat}.{fmt}"
        for lang in ("en", "ko")
        for cat in ("all", "news")
        for fmt in ("rss", "atom", "json")
    ]
    grid_first, grid_cached = [], []
    for path in grid:
        grid_first.append(timed(path))
        grid_cached += [timed(path) for _ in range(3)]

    tag_feeds = services.feeds.term_grid("tag")
    rng = random.Random(args.seed)
    sample = rng.sample([info.key for info in tag_feeds], min(args.sample, len(tag_feeds)))
    paths = [
        f"/feeds/{key.language}/tag/{quote(key.category)}.{fmt}"
        for key in sample
        for fmt in ("rss", "atom", "json")
    ]
    tag_first, tag_cached = [], []
    for path in paths:  # cached: asked again at once (more feeds than fit keep turning over)
        tag_first.append(timed(path))
        tag_cached += [timed(path) for _ in range(3)]
    kept, kept_bytes = services.feeds.term_cache_stats()
    rss_after = _rss_mb()
    store.close()

    budget = settings.feeds.term_cache_bytes
    first_ratio = statistics.median(tag_first) / statistics.median(grid_first)
    cached_ratio = statistics.median(tag_cached) / statistics.median(grid_cached)
    print(f"## Tag feeds: {args.items:,} items, {args.tags:,} tags ({len(tag_feeds):,} tag feeds)")
    print()
    print(
        f"store filled in {fill_s:.1f} s ({bare_fill_s:.1f} s without tags and authors); "
        f"python {sys.version.split()[0]}; SQLite"
    )
    print()
    print("| measure | tag feed | grid feed (peer) | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| first request (median, {len(tag_first)} tag / {len(grid_first)} grid) "
        f"| {_ms(tag_first)} | {_ms(grid_first)} | {first_ratio:.2f}x |"
    )
    print(
        f"| cached request (median) | {_ms(tag_cached)} | {_ms(grid_cached)} "
        f"| {cached_ratio:.2f}x |"
    )
    print(
        f"| start-up: app + first grid request (median of 3) | {tagged_startup_s * 1000:.0f} ms "
        f"| {bare_startup_s * 1000:.0f} ms (same items, no tags) "
        f"| {tagged_startup_s / bare_startup_s:.2f}x |"
    )
    print(
        f"| first request p95 | {sorted(tag_first)[int(len(tag_first) * 0.95)] * 1000:.2f} ms "
        f"| {max(grid_first) * 1000:.2f} ms (max) | |"
    )
    print()
    print(
        f"- start-up (app + first grid request): {startup_s * 1000:.0f} ms; "
        f"RSS {rss_before:.0f} -> {rss_started:.0f} MB (tag feeds not read)"
    )
    print(
        f"- after {len(paths)} tag feeds: RSS {rss_after:.0f} MB "
        f"(+{rss_after - rss_started:.0f} MB); cache keeps {kept} feeds in "
        f"{kept_bytes / 2**20:.1f} MiB of a {budget / 2**20:.0f} MiB budget"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
