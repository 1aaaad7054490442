"""Reading sanitised HTML: today's lxml walk against BeautifulSoup (lxml parser), same extraction.

    .venv/bin/python -m bench.html_parsers [--files 2000] [--rounds 3]

``normalise.html.extract`` reads nh3's output into BodyFacts with lxml. This
drives the very same block bookkeeping (``BlockWriter``, ``facts``) from a
BeautifulSoup tree built with ``features="lxml"``, checks that both give equal
BodyFacts for every file of the bench corpus (``bench/corpus.py``), and times
them against what parsing and normalising those files costs in the same
process. That denominator leaves out the store and feed rendering, so the
shares printed are upper bounds of the share of a whole cold ingest.
bench/README.md ("Reading HTML: lxml or BeautifulSoup") has a run's figures.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, datetime

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from bench.corpus import generate
from feedsvc.normalise import normalise
from feedsvc.normalise.html import BlockWriter, BodyFacts, extract, facts, sanitise
from feedsvc.parse import parse_document
from feedsvc.settings import SiteSettings

SITE = SiteSettings(base_url="https://news.example.com", id_prefix="tag:news.example.com,2024:")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def extract_bs4(clean_html: str) -> BodyFacts:
    """``extract`` with BeautifulSoup's tree in place of lxml's."""
    if not clean_html.strip():
        return BodyFacts(text="", first_heading=None, first_paragraph=None, first_image=None)
    soup = BeautifulSoup(clean_html, features="lxml")
    root = soup.body if soup.body is not None else soup
    writer = BlockWriter()
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, NavigableString):
            if not isinstance(node, Comment):
                writer.text(str(node))
            continue
        assert isinstance(node, Tag)
        name = "div" if node is root else node.name  # lxml's fragment parent is a div
        classes = set(node.get_attribute_list("class")) - {None}
        if leaving:
            writer.close(name, classes)
        elif name == "br":
            writer.line_break()
        elif name == "pre":
            writer.pre(node.get_text().strip("\n"))
        else:
            writer.open(name, classes)
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
    writer.flush()
    images = (img.get("src") for img in root.find_all("img"))
    return facts(writer.blocks, (src if isinstance(src, str) else None for src in images))


def _seconds(work: Callable[[], object], rounds: int) -> float:
    """The best of ``rounds`` runs, in CPU seconds of this process."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    corpus = [(f.name, f.text.encode("utf-8")) for f in generate(args.files)]
    raws = [parse_document(name, data) for name, data in corpus]
    cleans = [sanitise(raw.body_html, f"https://news.example.com/items/{raw.path}") for raw in raws]
    different = [
        raw.path
        for raw, clean in zip(raws, cleans, strict=True)
        if extract(clean) != extract_bs4(clean)
    ]
    if different:
        raise SystemExit(f"bs4 and lxml disagree on {len(different)} files, e.g. {different[0]}")

    def ingest() -> None:
        for name, data in corpus:
            normalise(parse_document(name, data), SITE, first_seen=NOW, changed_at=None)

    n = len(corpus)
    ingest_s = _seconds(ingest, args.rounds)
    lxml_s = _seconds(lambda: [extract(c) for c in cleans], args.rounds)
    bs4_s = _seconds(lambda: [extract_bs4(c) for c in cleans], args.rounds)
    with_bs4 = ingest_s - lxml_s + bs4_s
    print(f"{n} files, same BodyFacts from both; CPU per file, best of {args.rounds}:")
    print(f"  parse + normalise (lxml today)  {ingest_s / n * 1e6:8.0f} us")
    print(
        f"  extract with lxml               {lxml_s / n * 1e6:8.0f} us"
        f"  ({lxml_s / ingest_s:.1%} of parse + normalise)"
    )
    print(
        f"  extract with bs4 (lxml parser)  {bs4_s / n * 1e6:8.0f} us"
        f"  ({bs4_s / with_bs4:.1%} of parse + normalise with bs4; {bs4_s / lxml_s:.1f}x lxml)"
    )
    print(
        f"  parse + normalise with bs4      {with_bs4 / n * 1e6:8.0f} us"
        f"  (+{with_bs4 / ingest_s - 1:.1%})"
    )


if __name__ == "__main__":
    main()
