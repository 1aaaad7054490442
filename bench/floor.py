"""The floor of a cold scan: the library calls alone, against the peers' times (issue #19).

``python -m bench.floor [--files N] [--runs R]`` reads the N-file bench corpus
once the way a scan does, keeping what each file hands to the libraries that
do the checks (the bytes, the front matter's YAML, the HTML given to nh3 and
to lxml, the sample given to lingua, the finished item). It then times those
library calls alone on those inputs, with nothing of feedsvc around them, and
runs Hugo and Pelican on the same corpus (the median of R runs each).

What it prints is a lower bound on any cold scan that still does every check
on 2 cores: the sum of the calls' CPU per file, spread over the cores with no
cost at all for splitting the work, for the store, or for rendering. Left out
(so the bound is low): the transcript and date parsing, the URL and id checks,
nh3's callbacks that resolve relative URLs, the walk that collects text,
summary and first image, and the feeds themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3
import yaml

from bench import peers
from bench.ingest import bench_settings
from bench.run import WORK, ensure_corpus
from feedsvc import fileread
from feedsvc.discover import discover
from feedsvc.normalise import html, language
from feedsvc.outcome import Parsed
from feedsvc.parse import frontmatter
from feedsvc.store.codec import dump_dt
from feedsvc.types import item_fields

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Inputs:
    """What the corpus's files handed to each library during one real read."""

    def __init__(self) -> None:
        self.paths: list[Path] = []
        self.yaml: list[str] = []
        self.nh3: list[str] = []
        self.lxml: list[str] = []
        self.lingua: list[str] = []
        self.rows: list[dict[str, object]] = []
        self.read_all: Callable[[], object] = lambda: None


def capture(content: Path, files: int) -> Inputs:
    """Read up to ``files`` files of ``content`` as a scan does, recording each call's input."""
    settings = bench_settings(content, "sqlite://")
    found = discover(content, settings.content.ignore, settings.content.max_file_bytes)
    sources = list(found.files[:files])
    reader = fileread.FileReader(settings, datetime.now(UTC))
    got = Inputs()
    saved: list[tuple[Any, str, Any]] = []

    def record(module: Any, name: str, into: list[str], *, result: bool = False) -> None:
        """Keep the first argument of each call (``result``: what it returned)."""
        original = getattr(module, name)
        saved.append((module, name, original))

        def recorded(first: Any, *args: Any, **kwargs: Any) -> Any:
            returned = original(first, *args, **kwargs)
            into.append(returned if result else first)
            return returned

        setattr(module, name, recorded)

    record(frontmatter, "_build_yaml", got.yaml)
    record(html, "limit_nesting", got.nh3, result=True)  # what the Cleaner is given
    record(html, "body_tree", got.lxml)
    record(language, "_confidence", got.lingua)
    try:
        for source in sources:
            outcome = reader.read(source, None)
            if isinstance(outcome, Parsed):
                got.rows.append(item_fields(outcome.item, dump_dt))
            got.paths.append(content / source.path)
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)

    def read_all() -> None:
        for source in sources:
            reader.read(source, None)

    got.read_all = read_all
    return got


def _cpu(call: Callable[[], object]) -> float:
    started = time.process_time()
    call()
    return time.process_time() - started


def library_calls(got: Inputs) -> dict[str, Callable[[], object]]:
    """Each library's calls over the whole corpus, as one callable per step."""
    tags = set(html.ALLOWED_TAGS)
    dropped = set(html.CONTENT_DROPPED_TAGS)
    schemes = set(html.ALLOWED_SCHEMES)
    detector = language._detector()  # the detector the scan uses

    def read_and_hash() -> None:
        for path in got.paths:
            hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()

    def yaml_events() -> None:
        for source in got.yaml:
            for _event in yaml.parse(source, Loader=_Loader):
                pass

    cleaner = nh3.Cleaner(
        tags=tags,
        clean_content_tags=dropped,
        attributes=html.ALLOWED_ATTRIBUTES,
        url_schemes=schemes,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )

    def sanitise() -> None:
        for body in got.nh3:
            cleaner.clean(body)

    def tree() -> None:
        for clean in got.lxml:
            html.body_tree(clean)  # libxml2's HTML parser, nothing around it

    def detect() -> None:
        for sample in got.lingua:
            detector.compute_language_confidence_values(sample)

    def encode() -> None:
        for row in got.rows:
            json.dumps(row, ensure_ascii=False, separators=(",", ":"))

    def hand_back() -> None:
        for row in got.rows:
            pickle.loads(pickle.dumps(row, pickle.HIGHEST_PROTOCOL))

    encoded = [(str(row["id"]), json.dumps(row, ensure_ascii=False)) for row in got.rows]

    def store() -> None:
        with tempfile.TemporaryDirectory() as folder:
            db = sqlite3.connect(Path(folder) / "floor.sqlite3")
            db.execute("CREATE TABLE items (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
            with db:
                db.executemany("INSERT INTO items VALUES (?, ?)", encoded)
            db.close()

    return {
        "read the bytes, blake2b": read_and_hash,
        "YAML events (libyaml)": yaml_events,
        "nh3 Cleaner, no callbacks": sanitise,
        "lxml tree of the clean HTML": tree,
        "lingua on the sample": detect,
        "JSON of the stored row": encode,
        "pickle to and from a pool process": hand_back,
        "SQLite insert, one index": store,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-peers", action="store_true", help="only the floor")
    args = parser.parse_args()
    content = ensure_corpus(args.files, args.seed)
    got = capture(content, args.files)
    files = len(got.paths)
    language.load_models()
    steps = library_calls(got)
    per_file = {
        label: statistics.median(_cpu(call) for _ in range(args.runs)) / files * 1000
        for label, call in steps.items()
    }
    cores = len(os.sched_getaffinity(0))
    total = sum(per_file.values())
    floor_s = total * files / 1000 / cores
    print(f"{files} files; CPU ms per file, median of {args.runs}; {cores} cores")
    print("| library call | calls | ms per file |\n| --- | ---: | ---: |")
    counts = {
        "read the bytes, blake2b": files,
        "YAML events (libyaml)": len(got.yaml),
        "nh3 Cleaner, no callbacks": len(got.nh3),
        "lxml tree of the clean HTML": len(got.lxml),
        "lingua on the sample": len(got.lingua),
        "JSON of the stored row": len(got.rows),
        "pickle to and from a pool process": len(got.rows),
        "SQLite insert, one index": len(got.rows),
    }
    for label, value in per_file.items():
        print(f"| {label} | {counts[label]:,} | {value:.3f} |")
    print(f"| **sum** | | **{total:.3f}** |")
    whole = statistics.median(_cpu(got.read_all) for _ in range(args.runs)) / files * 1000
    print(
        f"feedsvc's read of a file (FileReader.read, one process): {whole:.3f} ms, "
        f"{whole / total:.1f}x the library calls"
    )
    print(f"floor of a cold scan on {cores} cores: {floor_s:.2f} s (no render, no overhead)")
    if args.no_peers:
        return
    work = WORK
    hugo = peers.bench_hugo(content, args.files, args.seed, args.runs, work)
    pelican = peers.bench_pelican(content, args.files, args.seed, args.runs, work)
    for name, result, factor in (("Hugo", hugo, 0.5), ("Pelican", pelican, 10.0)):
        if "cold_s" not in result:
            print(f"{name}: {result.get('error')}")
            continue
        budget = result["cold_s"] / factor
        print(
            f"{name} cold {result['cold_s']:.2f} s: {factor:g}x of it is {budget:.2f} s; "
            f"the floor alone is {floor_s / budget:.2f}x that budget "
            f"(at best {result['cold_s'] / floor_s:.2f}x of {name}'s speed, rendering aside)"
        )


if __name__ == "__main__":
    main()
