"""Quote sources in transcripts, recognised by their shape, as a reader sees them in a feed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from feedsvc.scanner import Scanner
from feedsvc.store import open_store
from feedsvc.web import create_app

NOW = datetime(2026, 1, 1, tzinfo=UTC)
HEADER = (
    "date 2024-11-13 [Sports] Korea qualifies\n"
    "입력 2024-11-13 15:42:35 수정 2024-11-13 15:43:40 News\n\n"
)


def feed_html(content_dir: Path, make_settings, body: str) -> str:
    (content_dir / "quote.txt").write_text(HEADER + body, encoding="utf-8")
    settings = make_settings(content_dir)
    store = open_store(settings.store.url)
    try:
        Scanner(settings, store, lambda: NOW).run()
        client = create_app(settings, store=store, clock=lambda: NOW).test_client()
        feed = json.loads(client.get("/feeds/all/sports.json").data)
    finally:
        store.close()
    [item] = feed["items"]
    html: str = item["content_html"]
    return html


@pytest.mark.parametrize(
    "source",
    [
        "Coach Kim Min-jae / Korea national team",
        "Park Ji-sung / former national team captain",
        "Lee Min-ho / Korea Football Association spokesperson",
        "Korea national team spokesperson/",
    ],
)
def test_a_source_line_with_lowercase_words_is_a_quotes_source(
    content_dir: Path, make_settings, source: str
) -> None:
    html = feed_html(
        content_dir,
        make_settings,
        f"[REPORT]\n\n\nThe team won again.\n\n\n{source}\n\nWe played as one team tonight.\n",
    )
    cite = source.removesuffix("/")
    assert (
        "<figure><blockquote><p>We played as one team tonight.</p></blockquote>"
        f"<figcaption>— <cite>{cite}</cite></figcaption></figure>"
    ) in html
    assert f"<p>{source}" not in html


@pytest.mark.parametrize(
    "line",
    ["Exports / imports", "The ratio of exports / imports fell sharply", "the coach / the team"],
)
def test_prose_with_a_slash_stays_prose(content_dir: Path, make_settings, line: str) -> None:
    html = feed_html(content_dir, make_settings, f"[REPORT]\n\n\n{line}\n\n\nNext paragraph.\n")
    assert "<blockquote>" not in html
    assert f"<p>{line}</p>" in html
