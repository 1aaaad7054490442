"""Per-step CPU of reading one file, as a pool worker reads it (issue #19).

``python -m bench.steps CONTENT [--files N] [--rounds R]`` reads up to N files of
CONTENT the way a scan's pool process does (``FileReader.read``: the bytes, the
parse, the normalisation and the outcome) in this one process, with a timing
wrapper around each step, and prints the CPU per file of every step (of the
whole process: lingua loads its models with several threads), the median of R
rounds. No profiler: a wrapper costs about a microsecond per
call, against steps of 30-300 µs. Steps nest (the HTML ones and the language
inside normalisation); "rest" is what the parent step spent outside its
named children.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nh3

from bench.ingest import bench_settings
from feedsvc import fileread, normalise
from feedsvc.discover import discover
from feedsvc.normalise import html, language

# (module, function name, step label, parent label): the steps, outermost first.
STEPS = (
    (fileread, "examine", "parse and normalise", ""),
    (
        fileread,
        "parse_document",
        "parse (front matter, YAML, Markdown, templates)",
        "parse and normalise",
    ),
    (fileread, "normalise_document", "normalise", "parse and normalise"),
    (normalise, "sanitise", "sanitising (caps, URLs, xml_safe)", "normalise"),
    (nh3, "clean", "nh3", "sanitising (caps, URLs, xml_safe)"),  # trees before one Cleaner
    (html, "_cleaner", "nh3", "sanitising (caps, URLs, xml_safe)"),  # its Cleaner's clean
    (normalise, "extract", "HTML text, summary paragraph, first image (lxml)", "normalise"),
    (normalise, "detect", "language detection", "normalise"),
    (normalise, "content_hash", "content hash", "normalise"),
)


LONG_ENGLISH = (
    "A paragraph of plain English prose, long enough that the language detector reads "
    "it by its trigram models alone, as it reads the opening of most stories."
)


class Clock:
    """Thread CPU per step label, nested calls subtracted from their parent's rest."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)

    def wrap(self, label: str, function: Callable[..., Any]) -> Callable[..., Any]:
        if function is getattr(html, "_cleaner", None):
            return lambda: _TimedCleaner(self.wrap(label, function().clean))

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.total[label] += time.process_time() - started

        return timed


class _TimedCleaner:
    """An nh3 Cleaner whose ``clean`` is timed (a Rust object takes no new attributes)."""

    def __init__(self, clean: Callable[[str], str]) -> None:
        self.clean = clean


@contextmanager
def wrapped(clock: Clock) -> Iterator[None]:
    saved = []
    for module, name, label, _parent in STEPS:
        if not hasattr(module, name):
            continue
        original = getattr(module, name)
        saved.append((module, name, original))
        setattr(module, name, clock.wrap(label, original))
    try:
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


def one_round(reader: fileread.FileReader, sources: list[Any]) -> dict[str, float]:
    clock = Clock()
    started = time.process_time()
    with wrapped(clock):
        for source in sources:
            reader.read(source, None)
    table = dict(clock.total)
    table["whole read"] = time.process_time() - started
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content", type=Path)
    parser.add_argument("--files", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    settings = bench_settings(args.content, "sqlite://")
    now = datetime.now(UTC)
    content = settings.content
    found = discover(args.content, content.ignore, content.max_file_bytes, rules=content.rules)
    sources = list(found.files[: args.files])
    reader = fileread.FileReader(settings, now)
    started = time.process_time()
    # Older trees (run with PYTHONPATH=<tree> to compare) have no load_models.
    load = getattr(language, "load_models", None)
    if load is not None:
        load()
    else:
        language.detect(LONG_ENGLISH)
    models = time.process_time() - started
    rounds = [one_round(reader, sources) for _ in range(args.rounds)]
    per_file = {
        label: statistics.median(r.get(label, 0.0) for r in rounds) / len(sources) * 1000
        for label in rounds[0]
    }
    children: dict[str, float] = defaultdict(float)
    # One row per label: a step may be found under two names (older trees).
    steps = list(dict.fromkeys((label, parent) for _module, _name, label, parent in STEPS))
    for label, parent in steps:
        if parent and label in per_file:
            children[parent] += per_file[label]
    print(f"{len(sources)} files, median of {args.rounds} rounds, process CPU ms per file")
    print("| step | ms per file |\n| --- | ---: |")
    for label, parent in steps:
        if label not in per_file:
            continue
        own = per_file[label] - children.get(label, 0.0)
        indent = "  " if parent else ""
        print(f"| {indent}{label}{' (rest)' if label in children else ''} | {own:.3f} |")
    whole = per_file["whole read"]
    print(f"| reading the bytes, outcome (rest) | {whole - per_file['parse and normalise']:.3f} |")
    print(f"| **whole read** | **{whole:.3f}** |")
    print(f"once per process: language models {models:.2f} s")


if __name__ == "__main__":
    main()
